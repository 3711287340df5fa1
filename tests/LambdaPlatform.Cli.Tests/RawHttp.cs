using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;

namespace LambdaPlatform.Cli.Tests;

/// <summary>HTTP/1.1 over a raw socket: for requests HttpClient will not send (trickled, oversized, from another source address).</summary>
internal sealed class RawHttp : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawHttp(Socket socket) => _socket = socket;

    /// <summary>Connects to <paramref name="server"/>, optionally from <paramref name="source"/> (a local address of this machine).</summary>
    public static async Task<RawHttp> ConnectAsync(Uri server, IPAddress? source = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (source is not null)
        {
            socket.Bind(new IPEndPoint(source, 0));
        }

        await socket.ConnectAsync(IPAddress.Parse(server.Host), server.Port);
        return new RawHttp(socket);
    }

    /// <summary>
    /// This machine's first IPv4 address that is not a loopback address. A connection from it to 127.0.0.1 stays on
    /// this machine but reaches the server with a non-loopback peer address that differs from the server's own.
    /// </summary>
    public static IPAddress NonLoopbackAddress()
    {
        var address = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        Assert.True(address is not null, "this machine has no non-loopback IPv4 address to send a non-local request from");
        return address!;
    }

    public async Task SendAsync(string text) => await SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await _socket.SendAsync(bytes, SocketFlags.None);
            bytes = bytes[sent..];
        }
    }

    /// <summary>Sends one byte; false when the server has closed the connection.</summary>
    public async Task<bool> TrySendByteAsync(byte b)
    {
        try
        {
            await _socket.SendAsync(new[] { b }, SocketFlags.None);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Everything the server sends until it closes the connection, or until <paramref name="timeout"/> passes (then what came so far).</summary>
    public async Task<(string Text, bool Closed)> ReceiveAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                if (n == 0)
                {
                    return (Encoding.UTF8.GetString(received.ToArray()), true);
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (OperationCanceledException)
        {
            return (Encoding.UTF8.GetString(received.ToArray()), false);
        }
        catch (SocketException)
        {
            return (Encoding.UTF8.GetString(received.ToArray()), true);
        }
    }

    /// <summary>Receives until the response's status line is in, then returns the status code (0 when the connection closed first).</summary>
    public async Task<int> ReceiveStatusAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (!received.ToString().Contains("\r\n", StringComparison.Ordinal))
        {
            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
            if (n == 0)
            {
                return 0;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        return int.Parse(received.ToString().Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
