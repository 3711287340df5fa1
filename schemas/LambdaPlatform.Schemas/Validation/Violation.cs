using System.Globalization;

namespace LambdaPlatform.Schemas.Validation;

/// <summary>
/// The first rule a JSON value broke: where (a JSON path such as <c>$.payload.cartValue</c>), which
/// rule (the JSON Schema keyword, e.g. <c>minimum</c>, or a decoder rule such as <c>json</c>), and a
/// message a producer can act on.
/// </summary>
public sealed class Violation
{
    private readonly List<string> _segments = [];

    /// <summary>Creates a violation at the root of the value being checked.</summary>
    public Violation(string rule, string message)
    {
        Rule = rule;
        Message = message;
    }

    /// <summary>The rule broken: a JSON Schema keyword (<c>type</c>, <c>required</c>, <c>minimum</c>…) or a decoder rule (<c>json</c>, <c>utf8</c>, <c>size</c>, <c>eventType</c>, <c>timestamp</c>).</summary>
    public string Rule { get; }

    /// <summary>What is wrong, in words a producer can act on.</summary>
    public string Message { get; }

    /// <summary>JSON path of the offending value, e.g. <c>$.payload.items</c>; <c>$</c> for the whole event.</summary>
    public string Path => "$" + string.Concat(Enumerable.Reverse(_segments));

    /// <summary>Prefixes the path with an object property (used while unwinding).</summary>
    public Violation Under(string property)
    {
        _segments.Add(IsPlainName(property) ? "." + property : "['" + property.Replace("'", "\\'", StringComparison.Ordinal) + "']");
        return this;
    }

    /// <summary>Prefixes the path with an array index (used while unwinding).</summary>
    public Violation UnderIndex(int index)
    {
        _segments.Add("[" + index.ToString(CultureInfo.InvariantCulture) + "]");
        return this;
    }

    /// <summary>One line: <c>$.path: message (rule)</c>.</summary>
    public override string ToString() => $"{Path}: {Message} ({Rule})";

    private static bool IsPlainName(string name)
    {
        if (name.Length == 0 || name.Length > 64)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_' && c != '-')
            {
                return false;
            }
        }

        return true;
    }
}
