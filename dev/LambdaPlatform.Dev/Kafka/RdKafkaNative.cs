using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Confluent.Kafka;

namespace LambdaPlatform.Dev.Kafka;

/// <summary>
/// Function pointers into the librdkafka copy that Confluent.Kafka loaded.
/// </summary>
/// <remarks>
/// A plain <c>[DllImport("librdkafka")]</c> may resolve to a different copy of the library than the one
/// Confluent.Kafka picked from its <c>runtimes/</c> folder, and a mock cluster created in one copy is
/// unusable from the other. So we make Confluent.Kafka load its copy first, find that exact file in
/// <c>/proc/self/maps</c>, and bind every export from it.
/// </remarks>
internal static unsafe class RdKafkaNative
{
    internal const int ProducerType = 0; // RD_KAFKA_PRODUCER
    internal const int ConfOk = 0;       // RD_KAFKA_CONF_OK
    internal const int ErrorBufferSize = 512;

    private static readonly Lazy<Api> LazyApi = new(Bind, LazyThreadSafetyMode.ExecutionAndPublication);

    internal static Api Exports => LazyApi.Value;

    /// <summary>Path of the librdkafka file the process runs (diagnostics).</summary>
    internal static string LibraryPath => Exports.Path;

    private static Api Bind()
    {
        EnsureConfluentLoaded();
        var path = FindLoadedLibrdkafka()
            ?? throw new DevBrokerException(
                ErrorCode.Local_Fail,
                "bind librdkafka",
                "Confluent.Kafka loaded librdkafka, but its file was not found in /proc/self/maps " +
                "(the dev broker needs Linux, where the loaded copy can be identified).");
        var handle = NativeLibrary.Load(path);
        return new Api(handle, path);
    }

    private static void EnsureConfluentLoaded()
    {
        if (Library.IsLoaded)
        {
            return;
        }

        try
        {
            Library.Load();
        }
        catch (InvalidOperationException)
        {
            // Another thread loaded it between the check and the call; that copy is the one we want.
        }
    }

    private static string? FindLoadedLibrdkafka()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return null;
        }

        foreach (var line in File.ReadLines(maps))
        {
            // Format: address perms offset dev inode [path]; the path is the 6th field and may hold spaces.
            var slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                continue;
            }

            var path = line[slash..].Trim();
            var file = System.IO.Path.GetFileName(path);
            if (file.Contains("librdkafka", StringComparison.Ordinal) &&
                file.Contains(".so", StringComparison.Ordinal) &&
                !file.Contains("++", StringComparison.Ordinal))
            {
                return path;
            }
        }

        return null;
    }

    /// <summary>Reads a NUL-terminated UTF-8 string owned by librdkafka.</summary>
    internal static string FromUtf8(byte* value) =>
        value is null ? string.Empty : Marshal.PtrToStringUTF8((nint)value) ?? string.Empty;

    /// <summary>NUL-terminated UTF-8 copy of <paramref name="value"/>, for pinning with <c>fixed</c>.</summary>
    internal static byte[] ToUtf8(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }

    internal static string ErrorText(ErrorCode code) => FromUtf8(Exports.Err2Str((int)code));

    /// <summary>The exports we use, named as in <c>rdkafka.h</c> and <c>rdkafka_mock.h</c>.</summary>
    internal sealed class Api
    {
        internal Api(nint handle, string path)
        {
            Path = path;
            ConfNew = (delegate* unmanaged<nint>)Get(handle, "rd_kafka_conf_new");
            ConfSet = (delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int>)Get(handle, "rd_kafka_conf_set");
            ConfDestroy = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_conf_destroy");
            New = (delegate* unmanaged<int, nint, byte*, nuint, nint>)Get(handle, "rd_kafka_new");
            Destroy = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_destroy");
            Err2Str = (delegate* unmanaged<int, byte*>)Get(handle, "rd_kafka_err2str");

            ClusterNew = (delegate* unmanaged<nint, int, nint>)Get(handle, "rd_kafka_mock_cluster_new");
            ClusterDestroy = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_mock_cluster_destroy");
            ClusterBootstraps = (delegate* unmanaged<nint, byte*>)Get(handle, "rd_kafka_mock_cluster_bootstraps");
            TopicCreate = (delegate* unmanaged<nint, byte*, int, int, int>)Get(handle, "rd_kafka_mock_topic_create");
            BrokerSetDown = (delegate* unmanaged<nint, int, int>)Get(handle, "rd_kafka_mock_broker_set_down");
            BrokerSetUp = (delegate* unmanaged<nint, int, int>)Get(handle, "rd_kafka_mock_broker_set_up");
            BrokerSetRtt = (delegate* unmanaged<nint, int, int, int>)Get(handle, "rd_kafka_mock_broker_set_rtt");
            BrokerSetHostPort = (delegate* unmanaged<nint, int, byte*, int, void>)Get(handle, "rd_kafka_mock_broker_set_host_port");
            PushRequestErrorsArray = (delegate* unmanaged<nint, short, nuint, int*, void>)Get(handle, "rd_kafka_mock_push_request_errors_array");
            // Variadic in C (cnt, then cnt pairs of int error, int rtt_ms). We always pass exactly one pair:
            // on the Linux x64 and arm64 ABIs variadic integer arguments travel like fixed ones.
            BrokerPushRequestErrorRtt = (delegate* unmanaged<nint, int, short, nuint, int, int, int>)Get(handle, "rd_kafka_mock_broker_push_request_error_rtts");
            ClearRequestErrors = (delegate* unmanaged<nint, short, void>)Get(handle, "rd_kafka_mock_clear_request_errors");
            PartitionSetLeader = (delegate* unmanaged<nint, byte*, int, int, int>)Get(handle, "rd_kafka_mock_partition_set_leader");
            SetApiVersion = (delegate* unmanaged<nint, short, short, short, int>)Get(handle, "rd_kafka_mock_set_apiversion");
            GroupInitialRebalanceDelayMs = (delegate* unmanaged<nint, int, void>)Get(handle, "rd_kafka_mock_group_initial_rebalance_delay_ms");
            SetGroupConsumerSessionTimeoutMs = (delegate* unmanaged<nint, int, void>)Get(handle, "rd_kafka_mock_set_group_consumer_session_timeout_ms");
            SetGroupConsumerHeartbeatIntervalMs = (delegate* unmanaged<nint, int, void>)Get(handle, "rd_kafka_mock_set_group_consumer_heartbeat_interval_ms");
            StartRequestTracking = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_mock_start_request_tracking");
            StopRequestTracking = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_mock_stop_request_tracking");
            GetRequests = (delegate* unmanaged<nint, nuint*, nint*>)Get(handle, "rd_kafka_mock_get_requests");
            RequestBrokerId = (delegate* unmanaged<nint, int>)Get(handle, "rd_kafka_mock_request_id");
            RequestApiKey = (delegate* unmanaged<nint, short>)Get(handle, "rd_kafka_mock_request_api_key");
            RequestTimestamp = (delegate* unmanaged<nint, long>)Get(handle, "rd_kafka_mock_request_timestamp");
            RequestDestroyArray = (delegate* unmanaged<nint*, nuint, void>)Get(handle, "rd_kafka_mock_request_destroy_array");
            ClearRequests = (delegate* unmanaged<nint, void>)Get(handle, "rd_kafka_mock_clear_requests");
        }

        internal string Path { get; }

        internal delegate* unmanaged<nint> ConfNew { get; }
        internal delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int> ConfSet { get; }
        internal delegate* unmanaged<nint, void> ConfDestroy { get; }
        internal delegate* unmanaged<int, nint, byte*, nuint, nint> New { get; }
        internal delegate* unmanaged<nint, void> Destroy { get; }
        internal delegate* unmanaged<int, byte*> Err2Str { get; }
        internal delegate* unmanaged<nint, int, nint> ClusterNew { get; }
        internal delegate* unmanaged<nint, void> ClusterDestroy { get; }
        internal delegate* unmanaged<nint, byte*> ClusterBootstraps { get; }
        internal delegate* unmanaged<nint, byte*, int, int, int> TopicCreate { get; }
        internal delegate* unmanaged<nint, int, int> BrokerSetDown { get; }
        internal delegate* unmanaged<nint, int, int> BrokerSetUp { get; }
        internal delegate* unmanaged<nint, int, int, int> BrokerSetRtt { get; }
        internal delegate* unmanaged<nint, int, byte*, int, void> BrokerSetHostPort { get; }
        internal delegate* unmanaged<nint, short, nuint, int*, void> PushRequestErrorsArray { get; }
        internal delegate* unmanaged<nint, int, short, nuint, int, int, int> BrokerPushRequestErrorRtt { get; }
        internal delegate* unmanaged<nint, short, void> ClearRequestErrors { get; }
        internal delegate* unmanaged<nint, byte*, int, int, int> PartitionSetLeader { get; }
        internal delegate* unmanaged<nint, short, short, short, int> SetApiVersion { get; }
        internal delegate* unmanaged<nint, int, void> GroupInitialRebalanceDelayMs { get; }
        internal delegate* unmanaged<nint, int, void> SetGroupConsumerSessionTimeoutMs { get; }
        internal delegate* unmanaged<nint, int, void> SetGroupConsumerHeartbeatIntervalMs { get; }
        internal delegate* unmanaged<nint, void> StartRequestTracking { get; }
        internal delegate* unmanaged<nint, void> StopRequestTracking { get; }
        internal delegate* unmanaged<nint, nuint*, nint*> GetRequests { get; }
        internal delegate* unmanaged<nint, int> RequestBrokerId { get; }
        internal delegate* unmanaged<nint, short> RequestApiKey { get; }
        internal delegate* unmanaged<nint, long> RequestTimestamp { get; }
        internal delegate* unmanaged<nint*, nuint, void> RequestDestroyArray { get; }
        internal delegate* unmanaged<nint, void> ClearRequests { get; }

        private static nint Get(nint handle, string name) =>
            NativeLibrary.TryGetExport(handle, name, out var address)
                ? address
                : throw new DevBrokerException(
                    ErrorCode.Local_Fail,
                    "bind librdkafka",
                    string.Create(CultureInfo.InvariantCulture, $"The loaded librdkafka has no export '{name}' (version {Library.VersionString})."));
    }
}
