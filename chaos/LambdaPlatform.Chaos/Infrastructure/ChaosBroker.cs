using LambdaPlatform.Kafka;
using LambdaPlatform.Dev.Kafka;

namespace LambdaPlatform.Chaos.Infrastructure;

/// <summary>The dev broker (librdkafka's mock cluster) of a scenario, with the events and dead-letter topics.</summary>
public static class ChaosBroker
{
    /// <summary>
    /// Starts a broker on a fixed free port (child processes reconnect to the same address after a restart) with
    /// <paramref name="partitions"/> partitions per topic. The mock keeps about 5 MiB (compressed) per partition, so
    /// a million events need a few dozen partitions to stay whole while consumers are down.
    /// </summary>
    /// <param name="partitions">Partitions per topic.</param>
    /// <param name="brokers">Brokers of the cluster.</param>
    /// <param name="sessionTimeout">
    /// How long the group coordinator keeps a silent member's partitions (KIP-848 groups); default the dev broker's 10 s.
    /// Shorter makes a SIGKILLed member's partitions move on sooner, so the instance started in its place gets work.
    /// </param>
    public static DevBroker Start(int partitions, int brokers = 1, TimeSpan? sessionTimeout = null)
    {
        var ports = Enumerable.Range(0, brokers).Select(_ => FreePort()).ToList();
        return DevBroker.Start(new DevBrokerOptions
        {
            BrokerCount = brokers,
            Ports = ports,
            Topics = [new DevBrokerTopic(Topics.Events, partitions), new DevBrokerTopic(Topics.DeadLetter, partitions)],
            ConsumerGroupSessionTimeout = sessionTimeout ?? new DevBrokerOptions().ConsumerGroupSessionTimeout,
        });
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
