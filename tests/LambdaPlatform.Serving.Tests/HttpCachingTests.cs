using System.Text;
using LambdaPlatform.Serving.Views;
using Microsoft.Extensions.Primitives;

namespace LambdaPlatform.Serving.Tests;

/// <summary>Entity tags and Cache-Control of view answers.</summary>
public sealed class HttpCachingTests
{
    private static readonly DateTime W = new(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc);
    private static readonly byte[] Rows = Encoding.UTF8.GetBytes("""[{"bucket":"2026-12-06T10:00:00Z","orders":3}]""");

    [Fact]
    public void ETag_IsWeak_Stable_AndChangesWithTheRowsWOrTheNewestRealtimeBucket()
    {
        var tag = HttpCaching.ETag(Rows, W, W.AddHours(1));
        Assert.Matches("^W/\"[0-9a-f]{16}\"$", tag);
        Assert.Equal(tag, HttpCaching.ETag(Rows.ToArray(), W, W.AddHours(1)));
        Assert.NotEqual(tag, HttpCaching.ETag(Encoding.UTF8.GetBytes("""[{"bucket":"2026-12-06T10:00:00Z","orders":4}]"""), W, W.AddHours(1)));
        Assert.NotEqual(tag, HttpCaching.ETag(Rows, W.AddDays(1), W.AddHours(1)));
        Assert.NotEqual(tag, HttpCaching.ETag(Rows, W, W.AddHours(2)));
        Assert.NotEqual(tag, HttpCaching.ETag(Rows, null, W.AddHours(1)));
    }

    [Theory]
    [InlineData("W/\"00000000000000aa\"", true)]
    [InlineData("\"00000000000000aa\"", true)] // weak comparison
    [InlineData("\"00000000000000ab\", W/\"00000000000000aa\"", true)]
    [InlineData("*", true)]
    [InlineData("W/\"00000000000000ab\"", false)]
    [InlineData("", false)]
    public void Matches_ComparesWeakly_AcrossAList(string header, bool expected) =>
        Assert.Equal(expected, HttpCaching.Matches(new StringValues(header), "W/\"00000000000000aa\""));

    [Fact]
    public void Matches_IsFalse_WithoutTheHeader() => Assert.False(HttpCaching.Matches(StringValues.Empty, "W/\"00000000000000aa\""));

    [Fact]
    public void CacheControl_LetsClientsKeepExactRanges_AndRevalidateFreshOnes()
    {
        Assert.Equal("private, max-age=60", HttpCaching.CacheControl(W, W, TimeSpan.FromSeconds(60)));
        Assert.Equal("private, max-age=60", HttpCaching.CacheControl(W.AddDays(-1), W, TimeSpan.FromSeconds(60)));
        Assert.Equal("private, no-cache", HttpCaching.CacheControl(W.AddMinutes(1), W, TimeSpan.FromSeconds(60)));
        Assert.Equal("private, no-cache", HttpCaching.CacheControl(W, null, TimeSpan.FromSeconds(60)));
        Assert.Equal("private, no-cache", HttpCaching.CacheControl(W, W, TimeSpan.Zero));
    }
}
