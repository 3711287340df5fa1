using System.Globalization;
using System.Net;
using Confluent.Kafka;

namespace LambdaPlatform.Dev.Kafka;

/// <summary>
/// An in-process Kafka "dev broker": librdkafka's mock cluster (Confluent's in-memory implementation of the
/// Kafka protocol inside the native library Confluent.Kafka ships), plus fault injection.
/// </summary>
/// <remarks>
/// <para>Any Kafka client can connect to <see cref="BootstrapServers"/>. Limits of the mock, measured or read
/// from its source (librdkafka 2.16):</para>
/// <list type="bullet">
/// <item>Topics must be created with <see cref="CreateTopic"/> (or <see cref="DevBrokerOptions.Topics"/>)
/// before a client names them: the mock answers no <c>CreateTopics</c> request, and a metadata request for an
/// unknown topic auto-creates it with 4 partitions.</item>
/// <item>Each partition keeps at most 5 MiB of record batches (and 100,000 batches); older batches are
/// dropped, advancing the log start offset, as retention would. The limits are compiled in: no setting
/// raises them. A consumer that falls further behind gets its offset reset (<c>auto.offset.reset</c>). A single
/// batch over 5 MiB (after compression) appended to a non-empty partition empties it, that batch included: the
/// producer sees it acknowledged but nobody can read it (a real broker refuses such a batch at send time).</item>
/// <item>The mock appends a retried batch of an idempotent producer again (it checks sequence numbers only for
/// transactional producers): after injected Produce errors a partition can hold an acknowledged event twice, at
/// two offsets. The platform's consumers count each eventId once.</item>
/// <item>Data lives in memory only and is gone after <see cref="Dispose"/>.</item>
/// </list>
/// <para>Threading: all members are thread-safe. Fault controls apply to requests the mock receives after the
/// call returns. Dispose once, after the clients using the broker are closed.</para>
/// </remarks>
public sealed class DevBroker : IDisposable, IAsyncDisposable
{
    /// <summary>Pass as a broker id to apply a broker fault control to every broker.</summary>
    public const int AllBrokers = -1;

    private readonly Lock _gate = new();
    private readonly RdKafkaNative.Api _api;
    private readonly LoopbackRelay[] _relays;
    private nint _handle;
    private nint _cluster;

    private DevBroker(RdKafkaNative.Api api, nint handle, nint cluster, int brokerCount, string bootstrapServers, LoopbackRelay[] relays)
    {
        _api = api;
        _handle = handle;
        _cluster = cluster;
        _relays = relays;
        BrokerCount = brokerCount;
        BootstrapServers = bootstrapServers;
        BrokerIds = Enumerable.Range(1, brokerCount).ToArray();
    }

    /// <summary>Comma-separated <c>host:port</c> list for a client's <c>bootstrap.servers</c>.</summary>
    public string BootstrapServers { get; }

    /// <summary>Number of brokers in the cluster.</summary>
    public int BrokerCount { get; }

    /// <summary>Broker ids, 1 to <see cref="BrokerCount"/>.</summary>
    public IReadOnlyList<int> BrokerIds { get; }

    /// <summary>File of the native librdkafka hosting the mock cluster (for diagnostics).</summary>
    public static string NativeLibraryPath => RdKafkaNative.LibraryPath;

    /// <summary>
    /// Starts a mock cluster: binds its listeners, applies <paramref name="options"/> and creates
    /// <see cref="DevBrokerOptions.Topics"/>. Returns when clients can connect.
    /// </summary>
    /// <param name="options">Settings; <see langword="null"/> for the defaults (one broker, kernel-assigned port).</param>
    /// <returns>The running broker; dispose it to stop it.</returns>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    /// <exception cref="DevBrokerException">The native library could not create the cluster, a fixed port is
    /// taken, or a topic could not be created.</exception>
    public static unsafe DevBroker Start(DevBrokerOptions? options = null)
    {
        options ??= new DevBrokerOptions();
        options.Validate();

        var api = RdKafkaNative.Exports;
        var handle = CreateHostHandle(api, options);
        var cluster = api.ClusterNew(handle, options.BrokerCount);
        if (cluster == 0)
        {
            api.Destroy(handle);
            throw new DevBrokerException(
                ErrorCode.Local_Fail,
                "create mock cluster",
                "rd_kafka_mock_cluster_new returned NULL (could not bind a loopback listener or start its thread)");
        }

        var relays = new List<LoopbackRelay>();
        try
        {
            api.GroupInitialRebalanceDelayMs(cluster, (int)options.GroupInitialRebalanceDelay.TotalMilliseconds);
            api.SetGroupConsumerSessionTimeoutMs(cluster, (int)options.ConsumerGroupSessionTimeout.TotalMilliseconds);
            api.SetGroupConsumerHeartbeatIntervalMs(cluster, (int)options.ConsumerGroupHeartbeatInterval.TotalMilliseconds);

            var bootstrapServers = RdKafkaNative.FromUtf8(api.ClusterBootstraps(cluster));
            if (options.Ports is { } ports)
            {
                bootstrapServers = StartRelays(api, cluster, options, ports, bootstrapServers, relays);
            }

            var broker = new DevBroker(api, handle, cluster, options.BrokerCount, bootstrapServers, [.. relays]);
            foreach (var topic in options.Topics)
            {
                broker.CreateTopic(topic.Name, topic.Partitions, topic.ReplicationFactor);
            }

            return broker;
        }
        catch
        {
            foreach (var relay in relays)
            {
                relay.Stop();
            }

            api.ClusterDestroy(cluster);
            api.Destroy(handle);
            throw;
        }
    }

    /// <summary>
    /// Creates a topic. Do it before any client names the topic: a client's metadata request auto-creates
    /// unknown topics with 4 partitions.
    /// </summary>
    /// <param name="name">Topic name: 1 to 249 characters from <c>[a-zA-Z0-9._-]</c>.</param>
    /// <param name="partitions">Partition count, at least 1.</param>
    /// <param name="replicationFactor">Replicas per partition, 1 to <see cref="BrokerCount"/>. Default 1.</param>
    /// <exception cref="ArgumentException">A name or count is out of range.</exception>
    /// <exception cref="DevBrokerException">The mock refused, e.g. <see cref="ErrorCode.TopicAlreadyExists"/>.</exception>
    public unsafe void CreateTopic(string name, int partitions, int replicationFactor = 1)
    {
        // The mock trusts its caller: 0 partitions "succeeds" with an unusable topic, and a negative count becomes
        // a huge allocation, so arguments are checked here.
        DevBrokerTopic.Validate(name, partitions, replicationFactor, BrokerCount);
        var utf8 = RdKafkaNative.ToUtf8(name);
        Invoke($"create topic '{name}'", cluster =>
        {
            fixed (byte* topic = utf8)
            {
                return _api.TopicCreate(cluster, topic, partitions, replicationFactor);
            }
        });
    }

    /// <summary>
    /// Takes a broker down: closes its connections and refuses new ones, keeping its port. Leadership does not
    /// move, so requests for partitions it leads stall (clients retry) until <see cref="SetBrokerUp"/>.
    /// </summary>
    /// <param name="brokerId">Broker id (1 to <see cref="BrokerCount"/>) or <see cref="AllBrokers"/>.</param>
    /// <exception cref="DevBrokerException"><see cref="ErrorCode.BrokerNotAvailable"/> for an unknown id.</exception>
    public unsafe void SetBrokerDown(int brokerId) =>
        Invoke($"set broker {brokerId} down", cluster => _api.BrokerSetDown(cluster, brokerId));

    /// <summary>Brings a broker taken down by <see cref="SetBrokerDown"/> back, on the same port.</summary>
    /// <param name="brokerId">Broker id (1 to <see cref="BrokerCount"/>) or <see cref="AllBrokers"/>.</param>
    /// <exception cref="DevBrokerException"><see cref="ErrorCode.BrokerNotAvailable"/> for an unknown id.</exception>
    public unsafe void SetBrokerUp(int brokerId) =>
        Invoke($"set broker {brokerId} up", cluster => _api.BrokerSetUp(cluster, brokerId));

    /// <summary>Delays every response of a broker by <paramref name="roundTripTime"/> (zero to stop).</summary>
    /// <param name="brokerId">Broker id (1 to <see cref="BrokerCount"/>) or <see cref="AllBrokers"/>.</param>
    /// <param name="roundTripTime">Added latency, millisecond resolution, zero or positive.</param>
    /// <exception cref="DevBrokerException"><see cref="ErrorCode.BrokerNotAvailable"/> for an unknown id.</exception>
    public unsafe void SetBrokerRoundTripTime(int brokerId, TimeSpan roundTripTime)
    {
        var ms = ToMilliseconds(roundTripTime, nameof(roundTripTime));
        Invoke($"set broker {brokerId} round-trip time", cluster => _api.BrokerSetRtt(cluster, brokerId, ms));
    }

    /// <summary>
    /// Makes the next requests of type <paramref name="apiKey"/>, on any broker, fail: the n-th such request
    /// gets <c>errors[n]</c>, then requests succeed again. <see cref="ErrorCode.NoError"/> lets one through;
    /// <see cref="ErrorCode.Local_Transport"/> closes the connection instead of answering.
    /// Adds to errors pushed earlier.
    /// </summary>
    /// <param name="apiKey">Request type to fail.</param>
    /// <param name="errors">Errors to answer with, in order.</param>
    public unsafe void PushRequestErrors(KafkaApiKey apiKey, params ReadOnlySpan<ErrorCode> errors)
    {
        var codes = new int[errors.Length];
        for (var i = 0; i < errors.Length; i++)
        {
            codes[i] = (int)errors[i];
        }

        lock (_gate)
        {
            var cluster = LiveCluster();
            fixed (int* first = codes)
            {
                _api.PushRequestErrorsArray(cluster, (short)apiKey, (nuint)codes.Length, first);
            }
        }
    }

    /// <summary>
    /// Like <see cref="PushRequestErrors"/>, for one broker, and each injected response also waits
    /// <paramref name="delay"/>. With <see cref="ErrorCode.NoError"/> this delays single requests.
    /// Broker errors are used before cluster-wide ones.
    /// </summary>
    /// <param name="brokerId">Broker id, 1 to <see cref="BrokerCount"/>.</param>
    /// <param name="apiKey">Request type to fail.</param>
    /// <param name="delay">Delay of each injected response, millisecond resolution; zero for none.</param>
    /// <param name="errors">Errors to answer with, in order.</param>
    /// <exception cref="DevBrokerException"><see cref="ErrorCode.Local_UnknownBroker"/> for an unknown id.</exception>
    public unsafe void PushBrokerRequestErrors(int brokerId, KafkaApiKey apiKey, TimeSpan delay, params ReadOnlySpan<ErrorCode> errors)
    {
        var ms = ToMilliseconds(delay, nameof(delay));
        lock (_gate)
        {
            var cluster = LiveCluster();
            foreach (var error in errors)
            {
                Check(
                    _api.BrokerPushRequestErrorRtt(cluster, brokerId, (short)apiKey, 1, (int)error, ms),
                    $"push {apiKey} errors on broker {brokerId}");
            }
        }
    }

    /// <summary>Drops cluster-wide errors pushed by <see cref="PushRequestErrors"/> and not used yet.</summary>
    /// <param name="apiKey">Request type whose pending errors to drop.</param>
    public unsafe void ClearRequestErrors(KafkaApiKey apiKey)
    {
        lock (_gate)
        {
            _api.ClearRequestErrors(LiveCluster(), (short)apiKey);
        }
    }

    /// <summary>
    /// Moves a partition's leadership, as a real cluster does after a broker failure; clients find out through
    /// <c>NOT_LEADER_OR_FOLLOWER</c> errors and a metadata refresh.
    /// </summary>
    /// <param name="topic">An existing topic (the mock would auto-create an unknown one).</param>
    /// <param name="partition">Partition number, from 0.</param>
    /// <param name="brokerId">New leader, or -1 for no leader (requests fail with <c>LEADER_NOT_AVAILABLE</c>).</param>
    /// <exception cref="DevBrokerException"><see cref="ErrorCode.UnknownTopicOrPart"/> for a partition beyond
    /// the topic's count; <see cref="ErrorCode.BrokerNotAvailable"/> for an unknown broker.</exception>
    public unsafe void SetPartitionLeader(string topic, int partition, int brokerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        var utf8 = RdKafkaNative.ToUtf8(topic);
        Invoke($"set leader of '{topic}' [{partition}] to broker {brokerId}", cluster =>
        {
            fixed (byte* name = utf8)
            {
                return _api.PartitionSetLeader(cluster, name, partition, brokerId);
            }
        });
    }

    /// <summary>
    /// Narrows the versions of a request type the brokers advertise (ApiVersions), to test clients against
    /// older brokers.
    /// </summary>
    /// <param name="apiKey">Request type.</param>
    /// <param name="minVersion">Lowest supported version.</param>
    /// <param name="maxVersion">Highest supported version; -1 with <paramref name="minVersion"/> -1 hides the
    /// request type.</param>
    public unsafe void SetApiVersion(KafkaApiKey apiKey, short minVersion, short maxVersion) =>
        Invoke($"set {apiKey} versions", cluster => _api.SetApiVersion(cluster, (short)apiKey, minVersion, maxVersion));

    /// <summary>
    /// Starts recording every request the brokers receive (broker, request type, time), from any client, until
    /// <see cref="StopRequestTracking"/>. Read them with <see cref="TrackedRequests"/>. Off by default.
    /// </summary>
    public unsafe void StartRequestTracking()
    {
        lock (_gate)
        {
            _api.StartRequestTracking(LiveCluster());
        }
    }

    /// <summary>Stops recording requests (those recorded stay until <see cref="ClearTrackedRequests"/>).</summary>
    public unsafe void StopRequestTracking()
    {
        lock (_gate)
        {
            _api.StopRequestTracking(LiveCluster());
        }
    }

    /// <summary>The requests recorded since <see cref="StartRequestTracking"/> (or the last clear), oldest first.</summary>
    /// <returns>A copy; later requests do not change it.</returns>
    public unsafe IReadOnlyList<DevBrokerRequest> TrackedRequests()
    {
        lock (_gate)
        {
            nuint count = 0;
            var requests = _api.GetRequests(LiveCluster(), &count);
            if (requests is null)
            {
                return [];
            }

            try
            {
                var result = new DevBrokerRequest[(int)count];
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = new DevBrokerRequest(
                        _api.RequestBrokerId(requests[i]), (KafkaApiKey)_api.RequestApiKey(requests[i]), _api.RequestTimestamp(requests[i]));
                }

                return result;
            }
            finally
            {
                _api.RequestDestroyArray(requests, count);
            }
        }
    }

    /// <summary>Forgets the requests recorded so far (tracking stays on or off as it was).</summary>
    public unsafe void ClearTrackedRequests()
    {
        lock (_gate)
        {
            _api.ClearRequests(LiveCluster());
        }
    }

    /// <summary>
    /// Stops the cluster and frees it: closes its listeners and connections, then destroys the mock cluster and
    /// its host handle. Blocks until the mock's thread exited. Safe to call more than once. Clients still
    /// connected see the broker vanish and retry until their own timeouts.
    /// </summary>
    public void Dispose()
    {
        foreach (var relay in _relays)
        {
            relay.Stop();
        }

        DestroyNative();
    }

    /// <summary>Like <see cref="Dispose"/>, and also awaits the end of every connection relayed for fixed ports.</summary>
    /// <returns>Completes when the cluster is destroyed.</returns>
    public async ValueTask DisposeAsync()
    {
        foreach (var relay in _relays)
        {
            await relay.DisposeAsync().ConfigureAwait(false);
        }

        DestroyNative();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"DevBroker({BrokerCount} broker(s), {BootstrapServers})");

    private static unsafe nint CreateHostHandle(RdKafkaNative.Api api, DevBrokerOptions options)
    {
        var conf = api.ConfNew();
        Set(api, conf, "client.id", "lambda-dev-broker");
        if (!string.IsNullOrWhiteSpace(options.Debug))
        {
            Set(api, conf, "debug", options.Debug);
        }
        else
        {
            // The hosting handle never connects anywhere; its notice "No bootstrap.servers configured" is noise.
            Set(api, conf, "log_level", "4");
        }

        var error = stackalloc byte[RdKafkaNative.ErrorBufferSize];
        var handle = api.New(RdKafkaNative.ProducerType, conf, error, RdKafkaNative.ErrorBufferSize);
        if (handle == 0)
        {
            // rd_kafka_new takes ownership of conf only on success.
            api.ConfDestroy(conf);
            throw new DevBrokerException(ErrorCode.Local_Fail, "create librdkafka handle", RdKafkaNative.FromUtf8(error));
        }

        return handle;
    }

    private static unsafe void Set(RdKafkaNative.Api api, nint conf, string name, string value)
    {
        var error = stackalloc byte[RdKafkaNative.ErrorBufferSize];
        fixed (byte* n = RdKafkaNative.ToUtf8(name), v = RdKafkaNative.ToUtf8(value))
        {
            if (api.ConfSet(conf, n, v, error, RdKafkaNative.ErrorBufferSize) != RdKafkaNative.ConfOk)
            {
                var reason = RdKafkaNative.FromUtf8(error);
                api.ConfDestroy(conf);
                throw new DevBrokerException(ErrorCode.Local_InvalidArg, $"set '{name}'", reason);
            }
        }
    }

    private static unsafe string StartRelays(
        RdKafkaNative.Api api, nint cluster, DevBrokerOptions options, IReadOnlyList<int> ports, string mockBootstraps, List<LoopbackRelay> relays)
    {
        // The mock lists its brokers in id order: "127.0.0.1:p1,127.0.0.1:p2,...".
        var mockEndpoints = mockBootstraps.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (mockEndpoints.Length != ports.Count)
        {
            throw new DevBrokerException(
                ErrorCode.Local_Fail, "map fixed ports", $"the mock reported {mockEndpoints.Length} listener(s) for {ports.Count} broker(s): '{mockBootstraps}'");
        }

        var host = options.EffectiveAdvertisedHost;
        var hostUtf8 = RdKafkaNative.ToUtf8(host);
        var advertised = new List<string>(ports.Count);
        for (var i = 0; i < ports.Count; i++)
        {
            var target = IPEndPoint.Parse(mockEndpoints[i]);
            relays.Add(LoopbackRelay.Start(new IPEndPoint(options.ListenAddress, ports[i]), target));
            fixed (byte* h = hostUtf8)
            {
                // Only changes what Metadata responses advertise; the mock keeps listening on its own port.
                api.BrokerSetHostPort(cluster, i + 1, h, ports[i]);
            }

            advertised.Add(string.Create(CultureInfo.InvariantCulture, $"{host}:{ports[i]}"));
        }

        return string.Join(',', advertised);
    }

    private static int ToMilliseconds(TimeSpan value, string paramName)
    {
        if (value < TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(paramName, value, "Must be zero or positive and below 2^31 ms.");
        }

        return (int)value.TotalMilliseconds;
    }

    private void Invoke(string operation, Func<nint, int> call)
    {
        int error;
        lock (_gate)
        {
            error = call(LiveCluster());
        }

        Check(error, operation);
    }

    private unsafe void Check(int error, string operation)
    {
        if (error != 0)
        {
            var code = (ErrorCode)error;
            throw new DevBrokerException(code, operation, RdKafkaNative.FromUtf8(_api.Err2Str(error)));
        }
    }

    private nint LiveCluster()
    {
        ObjectDisposedException.ThrowIf(_cluster == 0, this);
        return _cluster;
    }

    private unsafe void DestroyNative()
    {
        lock (_gate)
        {
            if (_cluster != 0)
            {
                _api.ClusterDestroy(_cluster);
                _cluster = 0;
            }

            if (_handle != 0)
            {
                _api.Destroy(_handle);
                _handle = 0;
            }
        }
    }
}

/// <summary>A request the dev broker received while <see cref="DevBroker.StartRequestTracking"/> was on.</summary>
/// <param name="BrokerId">Broker that received it.</param>
/// <param name="ApiKey">Request type (values outside <see cref="KafkaApiKey"/>'s names are other protocol requests).</param>
/// <param name="TimestampMicroseconds">When it arrived, librdkafka's monotonic clock in microseconds.</param>
public readonly record struct DevBrokerRequest(int BrokerId, KafkaApiKey ApiKey, long TimestampMicroseconds);
