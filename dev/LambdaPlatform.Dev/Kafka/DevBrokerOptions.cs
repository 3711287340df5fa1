using System.Net;

namespace LambdaPlatform.Dev.Kafka;

/// <summary>Settings for <see cref="DevBroker.Start(DevBrokerOptions?)"/>.</summary>
public sealed record DevBrokerOptions
{
    /// <summary>Number of brokers; ids run from 1 to this number. Default 1.</summary>
    public int BrokerCount { get; init; } = 1;

    /// <summary>
    /// Fixed TCP ports, one per broker (broker id <c>i</c> gets <c>Ports[i - 1]</c>), or
    /// <see langword="null"/> (default) for kernel-assigned ports.
    /// </summary>
    /// <remarks>
    /// The mock cluster always binds its listeners to a kernel-assigned port on 127.0.0.1; it can only
    /// change the address it <em>advertises</em>. With fixed ports the dev broker listens on them itself,
    /// relays each connection to the mock's own listener, and makes the mock advertise the fixed ports, so
    /// clients keep talking to the stable address after the bootstrap. The relay costs little on loopback
    /// but is not free; tests should leave this <see langword="null"/>.
    /// </remarks>
    public IReadOnlyList<int>? Ports { get; init; }

    /// <summary>
    /// Address the fixed <see cref="Ports"/> listen on. Default <see cref="IPAddress.Loopback"/>.
    /// Ignored without fixed ports (the mock's own listeners are loopback only).
    /// </summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Loopback;

    /// <summary>
    /// Host name advertised to clients with fixed <see cref="Ports"/>. Default: <see cref="ListenAddress"/>,
    /// or the machine's host name when listening on all interfaces.
    /// </summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>Topics created at start, before any client can name (and auto-create) them. Default none.</summary>
    public IReadOnlyList<DevBrokerTopic> Topics { get; init; } = [];

    /// <summary>
    /// How long a new classic-protocol group waits for more members before its first rebalance.
    /// Default zero (the mock's own default is 3 s, like a real broker's
    /// <c>group.initial.rebalance.delay.ms</c>).
    /// </summary>
    public TimeSpan GroupInitialRebalanceDelay { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Session timeout of KIP-848 (<c>group.protocol=consumer</c>) group members: how long a member that
    /// stopped heartbeating keeps its partitions. Default 10 s (the mock's own default is 30 s, like a
    /// real broker's <c>group.consumer.session.timeout.ms</c>; a cleanly closed consumer leaves at once).
    /// </summary>
    public TimeSpan ConsumerGroupSessionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Heartbeat interval the broker asks KIP-848 group members to use. Assignment changes reach members
    /// on heartbeats, so this bounds how fast a new member gets partitions. Default 500 ms (the mock's own
    /// default is 3 s, like a real broker's <c>group.consumer.heartbeat.interval.ms</c>).
    /// </summary>
    public TimeSpan ConsumerGroupHeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// librdkafka <c>debug</c> contexts for the hosting handle, e.g. <c>"mock"</c> to log every request the
    /// mock serves to standard error. Default <see langword="null"/> (off).
    /// </summary>
    public string? Debug { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        if (BrokerCount < 1)
        {
            throw Invalid(nameof(BrokerCount), $"must be at least 1 (was {BrokerCount})");
        }

        if (Ports is not null)
        {
            if (Ports.Count != BrokerCount)
            {
                throw Invalid(nameof(Ports), $"needs one port per broker: {BrokerCount} broker(s), {Ports.Count} port(s)");
            }

            foreach (var port in Ports)
            {
                if (port is < IPEndPoint.MinPort + 1 or > IPEndPoint.MaxPort)
                {
                    throw Invalid(nameof(Ports), $"must be between 1 and 65535 (was {port})");
                }
            }

            if (Ports.Distinct().Count() != Ports.Count)
            {
                throw Invalid(nameof(Ports), "must not repeat a port");
            }
        }

        ArgumentNullException.ThrowIfNull(ListenAddress, nameof(ListenAddress));
        ArgumentNullException.ThrowIfNull(Topics, nameof(Topics));
        foreach (var topic in Topics)
        {
            DevBrokerTopic.Validate(topic.Name, topic.Partitions, topic.ReplicationFactor, BrokerCount);
        }

        if (GroupInitialRebalanceDelay < TimeSpan.Zero || GroupInitialRebalanceDelay.TotalMilliseconds > int.MaxValue)
        {
            throw Invalid(nameof(GroupInitialRebalanceDelay), $"must be zero or positive (was {GroupInitialRebalanceDelay})");
        }

        if (ConsumerGroupSessionTimeout <= TimeSpan.Zero || ConsumerGroupSessionTimeout.TotalMilliseconds > int.MaxValue)
        {
            throw Invalid(nameof(ConsumerGroupSessionTimeout), $"must be positive (was {ConsumerGroupSessionTimeout})");
        }

        if (ConsumerGroupHeartbeatInterval <= TimeSpan.Zero || ConsumerGroupHeartbeatInterval >= ConsumerGroupSessionTimeout)
        {
            throw Invalid(
                nameof(ConsumerGroupHeartbeatInterval),
                $"must be positive and below {nameof(ConsumerGroupSessionTimeout)} (was {ConsumerGroupHeartbeatInterval})");
        }
    }

    internal string EffectiveAdvertisedHost =>
        AdvertisedHost
        ?? (ListenAddress.Equals(IPAddress.Any) || ListenAddress.Equals(IPAddress.IPv6Any)
            ? Dns.GetHostName()
            : ListenAddress.ToString());

    private static ArgumentException Invalid(string setting, string problem) =>
        new($"{nameof(DevBrokerOptions)}.{setting} {problem}.", setting);
}

/// <summary>A topic for <see cref="DevBrokerOptions.Topics"/>.</summary>
/// <param name="Name">Topic name: 1 to 249 characters from <c>[a-zA-Z0-9._-]</c>.</param>
/// <param name="Partitions">Partition count, at least 1.</param>
/// <param name="ReplicationFactor">Replicas per partition, 1 to the broker count. Default 1.</param>
public sealed record DevBrokerTopic(string Name, int Partitions, int ReplicationFactor = 1)
{
    internal static void Validate(string name, int partitions, int replicationFactor, int brokerCount)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 249 || name is "." or ".." || !name.All(IsLegal))
        {
            throw new ArgumentException(
                $"Topic name '{name}' is not legal: use 1 to 249 characters from [a-zA-Z0-9._-], not '.' or '..'.",
                nameof(name));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(replicationFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replicationFactor, brokerCount);
    }

    private static bool IsLegal(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';
}
