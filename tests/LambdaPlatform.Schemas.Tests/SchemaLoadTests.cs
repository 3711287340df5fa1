using LambdaPlatform.Schemas.Events;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Tests;

public sealed class SchemaLoadTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "schemas-" + Guid.NewGuid().ToString("N"));

    public SchemaLoadTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "t.x"));
        File.Copy(Path.Combine(EventSchemaRegistry.DefaultDirectory(), "envelope.schema.json"), Path.Combine(_dir, "envelope.schema.json"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void LoadDefault_FindsShippedEventTypes()
    {
        var registry = EventSchemaRegistry.LoadDefault();
        Assert.Contains(registry.EventTypes, t => t.Name == "user.action.checkout");
        Assert.Equal(4, registry.EventTypes.Count);
        Assert.Equal(["1", "2"], registry.Find("user.action.checkout")!.Versions.Select(v => v.Version));
        Assert.Equal("2", registry.Find("user.action.checkout")!.Newest.Version);
    }

    [Theory]
    [InlineData("v1beta")]
    [InlineData("v01")]
    [InlineData("v0")]
    [InlineData("v1.1")]
    [InlineData("v-1")]
    [InlineData("v1234567890")]
    public void Load_NamesTheFile_WhenVersionIsNotAPositiveNumber(string name)
    {
        var file = Path.Combine(_dir, "t.x", name + ".schema.json");
        File.WriteAllText(file, """{"type":"object"}""");
        var e = Assert.Throws<SchemaLoadException>(() => EventSchemaRegistry.Load(_dir));
        Assert.Equal(file, e.File);
        Assert.Contains("positive integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NamesFileAndKeyword_WhenKeywordIsUnsupported()
    {
        var file = Path.Combine(_dir, "t.x", "v1.schema.json");
        File.WriteAllText(file, """{"type":"object","properties":{"a":{"type":"string","pattern":"^x"}}}""");
        var e = Assert.Throws<SchemaLoadException>(() => EventSchemaRegistry.Load(_dir));
        Assert.Equal(file, e.File);
        Assert.Equal("#/properties/a/pattern", e.Location);
        Assert.Contains("unsupported keyword 'pattern'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NamesLine_WhenFileIsNotJson()
    {
        var file = Path.Combine(_dir, "t.x", "v1.schema.json");
        File.WriteAllText(file, "{\n  \"type\": \"object\",\n  oops\n}");
        var e = Assert.Throws<SchemaLoadException>(() => EventSchemaRegistry.Load(_dir));
        Assert.Equal("line 3", e.Location);
    }

    [Fact]
    public void Load_Fails_WhenNoEventTypes()
    {
        var e = Assert.Throws<SchemaLoadException>(() => EventSchemaRegistry.Load(_dir));
        Assert.Contains("no event type schemas", e.Message, StringComparison.Ordinal);
    }
}
