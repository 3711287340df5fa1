using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;

namespace LambdaPlatform.Dev.Kafka;

/// <summary>
/// Listens on a fixed port and relays every connection, byte for byte, to one mock broker's
/// kernel-assigned loopback port. Gives the dev broker a stable address although the mock cannot bind one.
/// </summary>
internal sealed class LoopbackRelay : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly Task _acceptLoop;
    private long _nextConnectionId;
    private int _stopped;

    private LoopbackRelay(TcpListener listener, IPEndPoint target)
    {
        _listener = listener;
        _target = target;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public static LoopbackRelay Start(IPEndPoint listenOn, IPEndPoint target)
    {
        var listener = new TcpListener(listenOn);
        try
        {
            listener.Start(backlog: 128);
        }
        catch (SocketException ex)
        {
            listener.Dispose();
            throw new DevBrokerException(ErrorCode.Local_Transport, $"listen on {listenOn}", ex.Message, ex);
        }

        return new LoopbackRelay(listener, target);
    }

    /// <summary>Stops listening and cuts every relayed connection; their tasks end in the background.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _listener.Stop();
    }

    /// <summary>Like <see cref="Stop"/>, and waits until every relay task ended.</summary>
    public async ValueTask DisposeAsync()
    {
        Stop();
        await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        _listener.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            var id = Interlocked.Increment(ref _nextConnectionId);
            var relay = RelayAsync(client, token);
            _connections[id] = relay;
            _ = relay.ContinueWith(
                (_, state) => _connections.TryRemove((long)state!, out Task? _),
                id,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private async Task RelayAsync(Socket client, CancellationToken stopping)
    {
        using var clientSocket = client;
        using var broker = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        try
        {
            // Kafka clients send small requests and wait for the answer: Nagle would add latency.
            clientSocket.NoDelay = true;
            broker.NoDelay = true;
            await broker.ConnectAsync(_target, connection.Token).ConfigureAwait(false);

            var upstream = PumpAsync(clientSocket, broker, connection.Token);
            var downstream = PumpAsync(broker, clientSocket, connection.Token);

            // Kafka has no use for half-closed connections: when either side ends, end both, as a broker would.
            await Task.WhenAny(upstream, downstream).ConfigureAwait(false);
            await connection.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(upstream, downstream).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The mock broker is down (connection refused) or we are stopping: closing the client's
            // connection is what a real broker would do, and the client reconnects on its own.
        }
    }

    private static async Task PumpAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                var sent = 0;
                while (sent < read)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Either side closed or we are stopping; the caller closes both sockets.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
