namespace LambdaPlatform.Dev.Kafka;

/// <summary>Runs a <see cref="DevBroker"/> as a standalone process part (<c>lambda dev-broker</c>).</summary>
public static class DevBrokerHost
{
    /// <summary>
    /// Starts a dev broker, reports it through <paramref name="started"/>, and keeps it running until
    /// <paramref name="cancellationToken"/> fires; then stops it and returns normally.
    /// </summary>
    /// <param name="options">Broker settings; a standalone broker usually sets <see cref="DevBrokerOptions.Ports"/>
    /// and <see cref="DevBrokerOptions.Topics"/>.</param>
    /// <param name="started">Called once the broker accepts connections, e.g. to print
    /// <see cref="DevBroker.BootstrapServers"/>; <see langword="null"/> for nothing.</param>
    /// <param name="cancellationToken">Stops the broker.</param>
    /// <returns>Completes after the broker stopped.</returns>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="DevBrokerException">The broker could not start.</exception>
    public static async Task RunAsync(DevBrokerOptions options, Action<DevBroker>? started = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var broker = DevBroker.Start(options);
        await using (broker.ConfigureAwait(false))
        {
            started?.Invoke(broker);
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Cancellation is how a host asks us to stop; it is not an error.
            }
        }
    }
}
