using System.Globalization;
using System.Text;
using System.Text.Json;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Events;

/// <summary>
/// The event schemas under <c>schemas/events/</c>: <c>envelope.schema.json</c> for the envelope and
/// <c>&lt;eventType&gt;/v&lt;N&gt;.schema.json</c> for each event type's payload, one file per version N (a
/// positive integer; versions are ordered as numbers, so v10 is newer than v9). These files are the single
/// source for validation; which version checks a payload is decided by <see cref="EventDecoder"/>.
/// Immutable and thread-safe once loaded.
/// </summary>
public sealed class EventSchemaRegistry
{
    private const string EnvelopeFile = "envelope.schema.json";

    private EventSchemaRegistry(string directory, CompiledSchema envelope, IReadOnlyList<EventTypeSchemas> types)
    {
        Directory = directory;
        Envelope = envelope;
        EventTypes = types;
    }

    /// <summary>The folder the schemas were loaded from.</summary>
    public string Directory { get; }

    /// <summary>The compiled envelope schema.</summary>
    public CompiledSchema Envelope { get; }

    /// <summary>Every known event type with its payload schema versions.</summary>
    public IReadOnlyList<EventTypeSchemas> EventTypes { get; }

    /// <summary>Environment variable naming a schemas folder (with <c>events/</c> and <c>views/</c>) to use instead of the shipped one.</summary>
    public const string DirectoryVariable = "LAMBDA_SCHEMAS";

    /// <summary>
    /// Finds the folder holding the event schemas: <c>$LAMBDA_SCHEMAS/events</c> when that variable is set, else
    /// the shipped schemas next to the running program
    /// (<c>schemas/events</c> is copied into every build output), else the nearest
    /// <c>schemas/events</c> above the current directory.
    /// </summary>
    public static string DefaultDirectory()
    {
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } configured)
        {
            var events = Path.Combine(configured, "events");
            return System.IO.Directory.Exists(events)
                ? events
                : throw new SchemaLoadException(configured, DirectoryVariable, "no 'events' folder in it (expected events/envelope.schema.json and events/<eventType>/v<N>.schema.json)");
        }

        var beside = Path.Combine(AppContext.BaseDirectory, "schemas", "events");
        if (System.IO.Directory.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(System.IO.Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "schemas", "events");
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new SchemaLoadException(beside, "#", "no schemas/events folder found next to the program or above the current directory");
    }

    /// <summary>Loads the shipped schemas from <see cref="DefaultDirectory"/>.</summary>
    public static EventSchemaRegistry LoadDefault() => Load(DefaultDirectory());

    /// <summary>Loads and compiles every schema under <paramref name="directory"/>.</summary>
    /// <exception cref="SchemaLoadException">A file is missing, is not JSON, or uses an unsupported keyword; the message names the file and place.</exception>
    public static EventSchemaRegistry Load(string directory)
    {
        var envelopePath = Path.Combine(directory, EnvelopeFile);
        if (!File.Exists(envelopePath))
        {
            throw new SchemaLoadException(envelopePath, "#", "envelope schema not found");
        }

        var envelope = CompileFile(envelopePath);
        var types = new List<EventTypeSchemas>();
        foreach (var typeDir in System.IO.Directory.GetDirectories(directory).Order(StringComparer.Ordinal))
        {
            var versions = new List<(int Number, PayloadSchema Schema)>();
            foreach (var file in System.IO.Directory.GetFiles(typeDir, "v*.schema.json").Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(file);
                var version = name["v".Length..^".schema.json".Length];
                if (!TryParseVersion(version, out var number))
                {
                    throw new SchemaLoadException(file, "#", $"'{name}' is not v<N>.schema.json with N a positive integer without leading zeros (e.g. v2.schema.json); versions are compared as numbers");
                }

                versions.Add((number, new PayloadSchema(version, Encoding.UTF8.GetBytes(version), CompileFile(file))));
            }

            if (versions.Count > 0)
            {
                var eventType = Path.GetFileName(typeDir);
                types.Add(new EventTypeSchemas(eventType, Encoding.UTF8.GetBytes(eventType), [.. versions.OrderBy(v => v.Number).Select(v => v.Schema)]));
            }
        }

        if (types.Count == 0)
        {
            throw new SchemaLoadException(directory, "#", "no event type schemas (<eventType>/v<version>.schema.json) found");
        }

        return new EventSchemaRegistry(directory, envelope, types);
    }

    /// <summary>Finds an event type by name, or null.</summary>
    public EventTypeSchemas? Find(string eventType) => EventTypes.FirstOrDefault(t => t.Name == eventType);

    /// <summary>Finds the event type whose name equals the reader's current string, without allocating; null when unknown.</summary>
    internal EventTypeSchemas? Find(ref Utf8JsonReader reader)
    {
        foreach (var type in EventTypes)
        {
            if (reader.ValueTextEquals(type.Utf8Name.Span))
            {
                return type;
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="text"/> is a version number as file names and <c>metadata.schemaVersion</c> write it: 1 to 999,999,999, no sign, no leading zero.</summary>
    internal static bool TryParseVersion(string text, out int number)
    {
        number = 0;
        if (text.Length is 0 or > 9 || text[0] == '0')
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        number = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return true;
    }

    private static CompiledSchema CompileFile(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
            return CompiledSchema.Compile(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new SchemaLoadException(path, $"line {e.LineNumber + 1}", "not valid JSON: " + e.Message);
        }
    }
}

/// <summary>An event type and the payload schema of each of its versions.</summary>
/// <param name="Name">Event type, e.g. <c>user.action.checkout</c>.</param>
/// <param name="Utf8Name">The name as UTF-8.</param>
/// <param name="Versions">Payload schemas, oldest first (ordered by version number); never empty.</param>
public sealed record EventTypeSchemas(string Name, ReadOnlyMemory<byte> Utf8Name, IReadOnlyList<PayloadSchema> Versions)
{
    /// <summary>The newest version: the one a payload is checked against first when the event names none.</summary>
    public PayloadSchema Newest => Versions[^1];

    /// <summary>The version written <paramref name="version"/> (e.g. <c>2</c>), or null.</summary>
    public PayloadSchema? FindVersion(string version) => Versions.FirstOrDefault(v => v.Version == version);

    /// <summary>Finds the version whose name equals the reader's current string, without allocating.</summary>
    internal PayloadSchema? FindVersion(ref Utf8JsonReader reader)
    {
        foreach (var v in Versions)
        {
            if (reader.ValueTextEquals(v.Utf8Version.Span))
            {
                return v;
            }
        }

        return null;
    }
}

/// <summary>One version of an event type's payload schema.</summary>
/// <param name="Version">The version number N as written in <c>v&lt;N&gt;.schema.json</c> and in <c>metadata.schemaVersion</c>, e.g. <c>2</c>.</param>
/// <param name="Utf8Version">The version as UTF-8.</param>
/// <param name="Schema">The compiled payload schema.</param>
public sealed record PayloadSchema(string Version, ReadOnlyMemory<byte> Utf8Version, CompiledSchema Schema);
