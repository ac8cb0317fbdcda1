using MlNetTransfer.Evaluation;

namespace MlNetTransfer.Tests;

public class WilsonIntervalTests
{
    [Theory]
    // Textbook values of the Wilson (1927) score interval at z = 1.96 (no continuity correction).
    [InlineData(0, 10, 0.0, 0.2775)]
    [InlineData(5, 10, 0.2366, 0.7634)]
    [InlineData(10, 10, 0.7225, 1.0)]
    [InlineData(1, 10, 0.0179, 0.4042)]
    public void MatchesTheReferenceValues(int successes, int count, double low, double high)
    {
        var (l, h) = WilsonInterval.Of(successes, count);
        Assert.Equal(low, l, 4);
        Assert.Equal(high, h, 4);
    }

    [Fact]
    public void NoImagesSayNothingAndImpossibleCountsAreRefused()
    {
        Assert.Equal((0.0, 1.0), WilsonInterval.Of(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => WilsonInterval.Of(4, 3));
    }
}
