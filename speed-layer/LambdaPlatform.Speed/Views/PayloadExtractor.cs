using System.Text;
using System.Text.Json;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.Speed.Views;

/// <summary>
/// Reads a fixed set of payload paths (e.g. <c>location</c>, <c>cart.value</c>) out of a payload object in
/// one forward pass, into numbered slots. Unneeded values are skipped without decoding. Immutable and
/// thread-safe; the output span belongs to the caller.
/// </summary>
public sealed class PayloadExtractor
{
    private readonly Node _root = new();

    /// <summary>Creates an extractor for <paramref name="paths"/>; slot i receives paths[i].</summary>
    public PayloadExtractor(IReadOnlyList<IReadOnlyList<string>> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        for (var slot = 0; slot < paths.Count; slot++)
        {
            var node = _root;
            foreach (var segment in paths[slot])
            {
                node = node.Child(segment);
            }

            node.Slots.Add(slot);
        }

        SlotCount = paths.Count;
    }

    /// <summary>Number of slots.</summary>
    public int SlotCount { get; }

    /// <summary>Fills <paramref name="values"/> (length ≥ <see cref="SlotCount"/>) from <paramref name="payload"/>; absent paths are <see cref="FieldValue.Missing"/>.</summary>
    public void Extract(ReadOnlyMemory<byte> payload, Span<FieldValue> values)
    {
        values[..SlotCount].Clear();
        if (SlotCount == 0)
        {
            return;
        }

        var reader = new Utf8JsonReader(payload.Span);
        if (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            Walk(ref reader, payload, _root, values);
        }
    }

    private static void Walk(ref Utf8JsonReader reader, ReadOnlyMemory<byte> payload, Node node, Span<FieldValue> values)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var child = node.Find(ref reader);
            reader.Read();
            if (child is null)
            {
                reader.Skip();
                continue;
            }

            if (reader.TokenType == JsonTokenType.StartObject && child.Children.Count > 0)
            {
                Walk(ref reader, payload, child, values);
                continue;
            }

            var value = reader.TokenType switch
            {
                JsonTokenType.String => FieldValue.OfUtf8(reader.ValueIsEscaped
                    ? Encoding.UTF8.GetBytes(reader.GetString()!)
                    : payload.Slice((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length)),
                JsonTokenType.Number => FieldValue.Of(reader.GetDouble()),
                JsonTokenType.True => FieldValue.Of(true),
                JsonTokenType.False => FieldValue.Of(false),
                _ => FieldValue.Missing,
            };
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }

            foreach (var slot in child.Slots)
            {
                values[slot] = value;
            }
        }
    }

    private sealed class Node
    {
        public List<(byte[] Name, Node Node)> Children { get; } = [];

        public List<int> Slots { get; } = [];

        public Node Child(string name)
        {
            var utf8 = Encoding.UTF8.GetBytes(name);
            foreach (var (n, child) in Children)
            {
                if (n.AsSpan().SequenceEqual(utf8))
                {
                    return child;
                }
            }

            var node = new Node();
            Children.Add((utf8, node));
            return node;
        }

        public Node? Find(ref Utf8JsonReader reader)
        {
            foreach (var (name, child) in Children)
            {
                if (reader.ValueTextEquals(name))
                {
                    return child;
                }
            }

            return null;
        }
    }
}
