using LambdaPlatform.ClickHouse;
using LambdaPlatform.Kafka;
using LambdaPlatform.Serving.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LambdaPlatform.Hosting;

/// <summary>How a process records and exports traces and writes its logs (<c>telemetry.*</c> in the configuration file).</summary>
public sealed record TelemetryOptions
{
    /// <summary>Environment variable the OpenTelemetry SDK reads for the OTLP endpoint: <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Where spans and logs are exported with OTLP (<c>telemetry.otlpEndpoint</c>), e.g. <c>http://otel-collector:4317</c>; null: the
    /// SDK's own variables decide (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>); without those, nothing
    /// is exported (spans are still recorded, so logs carry trace and span ids).
    /// </summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary>OTLP transport (<c>telemetry.otlpProtocol</c>): <c>grpc</c> (port 4317) or <c>http/protobuf</c> (port 4318). Default <c>grpc</c>.</summary>
    public string OtlpProtocol { get; init; } = "grpc";

    /// <summary>Console logs as one JSON object a line (<c>telemetry.logFormat: json</c>, flag <c>--log-format json</c>) instead of text. Default false.</summary>
    public bool JsonLogs { get; init; }

    /// <summary>The resource's <c>service.name</c> (<c>telemetry.serviceName</c>; env <c>OTEL_SERVICE_NAME</c> wins). Default <c>lambda</c>.</summary>
    public string ServiceName { get; init; } = "lambda";

    /// <summary>The role of the process (<c>up</c>, <c>serve</c>, <c>speed</c>, <c>archive</c>, <c>batch</c>), exported as <c>lambda.role</c>.</summary>
    public string Role { get; init; } = "up";

    /// <summary>True when OTLP export is on: <see cref="OtlpEndpoint"/>, or one of the SDK's endpoint variables in <paramref name="environment"/>.</summary>
    public bool ExportsOtlp(IReadOnlyDictionary<string, string>? environment = null)
    {
        if (OtlpEndpoint is not null)
        {
            return true;
        }

        string? Get(string name) => environment is null ? Environment.GetEnvironmentVariable(name) : environment.GetValueOrDefault(name);
        return !string.IsNullOrWhiteSpace(Get(OtlpEndpointVariable)) || !string.IsNullOrWhiteSpace(Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
    }

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    /// <returns>This instance.</returns>
    public TelemetryOptions Validate()
    {
        if (OtlpEndpoint is { } endpoint && (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https")))
        {
            throw new ArgumentException($"TelemetryOptions.OtlpEndpoint must be an absolute http(s) URL, not '{endpoint}'", nameof(OtlpEndpoint));
        }

        if (OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            throw new ArgumentException($"TelemetryOptions.OtlpProtocol must be grpc or http/protobuf, not '{OtlpProtocol}'", nameof(OtlpProtocol));
        }

        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            throw new ArgumentException("TelemetryOptions.ServiceName must not be empty", nameof(ServiceName));
        }

        return this;
    }
}

/// <summary>
/// Traces and logs of a process (the third of the composition helpers' concerns, beside each role's metrics): every role's
/// activity source is registered by its own helper (<see cref="LambdaServiceCollectionExtensions.AddSpeedLayer"/> …), this one adds
/// what every process shares — ASP.NET Core's request spans, ClickHouse statements (<see cref="TracingClickHouse"/>, wrapped
/// around the clients by <see cref="LambdaServiceCollectionExtensions.AddLambdaCore"/>), the producers' spans, the resource
/// (<c>service.name</c>, <c>service.instance.id</c> = host/pid, <c>lambda.role</c>), OTLP export when configured, and logs that
/// carry the trace and span ids (in a scope of text logs, as fields of JSON logs, and on exported log records).
/// </summary>
public static class LambdaTelemetry
{
    /// <summary>Paths whose requests make no span: Prometheus scrapes and load-balancer health checks.</summary>
    private static readonly string[] Untraced = ["/metrics", "/health"];

    /// <summary>Adds tracing, log correlation and (when configured) OTLP export; see <see cref="LambdaTelemetry"/>.</summary>
    public static IServiceCollection AddLambdaTelemetry(this IServiceCollection services, TelemetryOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var otlp = options.ExportsOtlp();
        services.AddLogging(logging =>
        {
            // Log scopes get SpanId, TraceId and ParentId of the current span.
            logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
            if (options.JsonLogs)
            {
                logging.AddJsonConsole(o =>
                {
                    o.IncludeScopes = true;
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ";
                });
            }
            else
            {
                logging.AddSimpleConsole(o => o.IncludeScopes = true);
            }

            if (otlp)
            {
                logging.AddOpenTelemetry(o =>
                {
                    o.IncludeScopes = true;
                    o.AddOtlpExporter(exporter => Configure(exporter, options, "/v1/logs"));
                });
            }
        });

        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService(options.ServiceName, serviceInstanceId: ServingStore.ThisInstance)
                .AddAttributes([new KeyValuePair<string, object>("lambda.role", options.Role)]))
            .WithTracing(tracing =>
            {
                tracing.AddSource(TracingClickHouse.SourceName, KafkaTracing.ProducerSourceName);
                tracing.AddAspNetCoreInstrumentation(o =>
                {
                    o.Filter = context => !Untraced.Any(p => context.Request.Path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase));
                    o.RecordException = true;
                });
                if (otlp)
                {
                    tracing.AddOtlpExporter(exporter => Configure(exporter, options, "/v1/traces"));
                }
            });
        return services;
    }

    /// <summary>
    /// Tracing for a short-lived producer without a host (<c>lambda produce</c>): its spans (<see cref="KafkaTracing.ProducerSource"/>)
    /// are recorded, so its records carry a <c>traceparent</c>, and exported with OTLP when configured. Dispose it to flush the export.
    /// </summary>
    public static TracerProvider CreateProducerTracing(TelemetryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(resource => resource
                .AddService(options.ServiceName, serviceInstanceId: ServingStore.ThisInstance)
                .AddAttributes([new KeyValuePair<string, object>("lambda.role", options.Role)]))
            .AddSource(KafkaTracing.ProducerSourceName);
        if (options.ExportsOtlp())
        {
            builder.AddOtlpExporter(exporter => Configure(exporter, options, "/v1/traces"));
        }

        return builder.Build();
    }

    /// <summary>The configured endpoint (with the signal's path for <c>http/protobuf</c>) and protocol; else the SDK's variables.</summary>
    private static void Configure(OtlpExporterOptions exporter, TelemetryOptions options, string signalPath)
    {
        if (options.OtlpEndpoint is not { } endpoint)
        {
            return;
        }

        exporter.Protocol = options.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
        exporter.Endpoint = exporter.Protocol == OtlpExportProtocol.HttpProtobuf && endpoint.AbsolutePath is "/" or ""
            ? new Uri(endpoint, signalPath)
            : endpoint;
    }
}
