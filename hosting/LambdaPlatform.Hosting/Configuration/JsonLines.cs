using System.Text.Json;

namespace LambdaPlatform.Hosting.Configuration;

/// <summary>
/// The line of every key of a JSON configuration file, by configuration path (<c>section:key</c>, case-insensitive, array
/// elements by index), so a bad key can be named with its line; and JSON syntax errors with theirs. Reads the file with the
/// rules of the JSON configuration provider (comments and trailing commas allowed).
/// </summary>
internal static class JsonLines
{
    /// <exception cref="ConfigurationFileException">The file is not valid JSON (the message gives the line).</exception>
    public static Dictionary<string, int> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var lines = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var path2 = new List<string>();
        var arrayIndex = new Stack<int>();
        var containers = new Stack<bool>(); // true: array
        string? pending = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        pending = reader.GetString();
                        lines[string.Join(':', path2.Append(pending!))] = LineOf(bytes, reader.TokenStartIndex);
                        break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        EnterValue(reader.TokenStartIndex);
                        containers.Push(reader.TokenType == JsonTokenType.StartArray);
                        if (reader.TokenType == JsonTokenType.StartArray)
                        {
                            arrayIndex.Push(0);
                        }

                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        if (containers.Pop())
                        {
                            arrayIndex.Pop();
                        }

                        LeaveValue();
                        break;
                    default:
                        EnterValue(reader.TokenStartIndex);
                        LeaveValue();
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            throw new ConfigurationFileException($"{path}: line {(e.LineNumber ?? 0) + 1}: not valid JSON: {FirstSentence(e.Message)}") { Line = (int)(e.LineNumber ?? 0) + 1 };
        }

        return lines;

        // The path of the value now starting: a property's name, or the next index of the enclosing array.
        void EnterValue(long start)
        {
            if (containers.Count == 0)
            {
                return;
            }

            if (containers.Peek())
            {
                var index = arrayIndex.Pop();
                arrayIndex.Push(index + 1);
                path2.Add(index.ToString(System.Globalization.CultureInfo.InvariantCulture));
                lines.TryAdd(string.Join(':', path2), LineOf(bytes, start));
            }
            else
            {
                path2.Add(pending!);
            }
        }

        void LeaveValue()
        {
            if (path2.Count > 0 && containers.Count > 0)
            {
                path2.RemoveAt(path2.Count - 1);
            }
        }
    }

    private static int LineOf(byte[] bytes, long index)
    {
        var line = 1;
        for (var i = 0; i < index && i < bytes.Length; i++)
        {
            if (bytes[i] == (byte)'\n')
            {
                line++;
            }
        }

        return line;
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut < 0 ? message : message[..cut]).Trim();
    }
}
