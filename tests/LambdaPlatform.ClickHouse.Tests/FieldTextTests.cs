using System.Globalization;
using LambdaPlatform.Schemas.Views;

namespace LambdaPlatform.ClickHouse.Tests;

/// <summary>
/// The text form of a number (<see cref="FieldText.Number"/>) is what the batch engine writes: every value here is
/// checked against chDB's own <c>toString(Float64)</c> and its JSON path (<c>toString(JSONExtractFloat(...))</c>).
/// </summary>
[Collection(ChDbGroup.Name)]
public sealed class FieldTextTests(ChDbFixture fixture)
{
    public static IEnumerable<double> Values()
    {
        double[] special = [0, 1, -1, 2, 0.1, 0.3, 1e21, 1e20, 99999999999999999999.0, 1e-6, 1e-7, 0.000123, 123456789012345678.0, 1.5e300,
            double.Epsilon, double.MaxValue, double.MinValue, 1e15, 1e16, 12345.678, 149.99, 2.5e-7, 9007199254740993, 4.35, 0.1 + 0.2];
        var random = new Random(20261207);
        var generated = Enumerable.Range(0, 3000).Select(i => (i % 4) switch
        {
            0 => Math.Round(random.NextDouble() * 1000, random.Next(0, 5)),
            1 => random.Next(-1_000_000, 1_000_000),
            2 => (random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-30, 30)),
            _ => BitConverter.Int64BitsToDouble(random.NextInt64()),
        }).Where(double.IsFinite);
        return special.Concat(generated);
    }

    [Fact]
    public async Task Number_WritesWhatClickHouseToStringWrites_ForRandomDoubles()
    {
        var values = Values().ToList();
        // Passed bit for bit: ClickHouse's parser of float text is not always exact.
        var literals = string.Join(", ", values.Select(v => $"reinterpretAsFloat64(toUInt64({BitConverter.DoubleToUInt64Bits(v).ToString(CultureInfo.InvariantCulture)}))"));
        await using var stream = await fixture.Backend.QueryAsync($"SELECT toString(x) FROM (SELECT arrayJoin([{literals}]) AS x)", "TabSeparated");
        using var reader = new StreamReader(stream);
        var texts = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(values.Count, texts.Length);
        for (var i = 0; i < values.Count; i++)
        {
            Assert.True(texts[i] == FieldText.Number(values[i]), $"{values[i]:R}: ClickHouse writes '{texts[i]}', FieldText '{FieldText.Number(values[i])}'");
        }
    }

    [Theory]
    [InlineData("2.0", "2")]
    [InlineData("2", "2")]
    [InlineData("-0", "0")]
    [InlineData("-0.0", "0")]
    [InlineData("1E21", "1e21")]
    [InlineData("12345678901234567890", "12345678901234567000")]
    [InlineData("0.0000001", "1e-7")]
    [InlineData("149.990", "149.99")]
    public async Task Number_OfAJsonNumber_ReadsTheSameOnBothSides(string json, string expected)
    {
        var reader = new System.Text.Json.Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(json));
        reader.Read();
        Assert.Equal(expected, FieldText.Number(reader.GetDouble()));
        var path = new FieldPath("payload.v", FieldRoot.Payload, ["v"], FieldTypes.Number);
        await using var stream = await fixture.Backend.QueryAsync($"SELECT {FieldSql.ClickHouse(path, MeasureInput.Text)} FROM (SELECT '{{\"v\":{json}}}' AS payload)", "TabSeparated");
        using var text = new StreamReader(stream);
        Assert.Equal(expected, (await text.ReadToEndAsync()).Trim());
    }
}
