using MlNetTransfer.Evaluation;

namespace MlNetTransfer.Tests;

/// <summary>The paired comparison the choice between modes rests on: McNemar's exact test and paired bootstrap intervals.</summary>
public sealed class PairedComparisonTests
{
    [Theory]
    [InlineData(1, 9, 0.021484375)]   // 2 * (C(10,0) + C(10,1)) / 2^10
    [InlineData(9, 1, 0.021484375)]   // symmetric
    [InlineData(5, 5, 1.0)]
    [InlineData(0, 0, 1.0)]
    [InlineData(0, 6, 0.03125)]       // 2 / 2^6
    public void McNemarExactMatchesTheBinomialTail(int b, int c, double p) =>
        Assert.Equal(p, PairedComparison.McNemarExact(b, c), 12);

    [Fact]
    public void McNemarStaysFiniteForThousandsOfDisagreements()
    {
        double p = PairedComparison.McNemarExact(1400, 1600);
        Assert.InRange(p, 0.0002, 0.0004); // normal approximation: z = 200 / sqrt(3000) = 3.65, p = 2.6e-4
        Assert.Equal(1.0, PairedComparison.McNemarExact(1500, 1500), 6);
    }

    [Fact]
    public void ABetterSecondClassifierIsFoundAndItsMarginIntervalHoldsTheMargin()
    {
        // 200 images: both right on 150, both wrong on 20, only the second right on 25, only the first on 5.
        var first = new List<bool>();
        var second = new List<bool>();
        void Add(int count, bool a, bool b) { for (int i = 0; i < count; i++) { first.Add(a); second.Add(b); } }
        Add(150, true, true);
        Add(20, false, false);
        Add(25, false, true);
        Add(5, true, false);
        var firstLoss = first.Select(r => r ? 0.1 : 2.0).ToList();
        var secondLoss = second.Select(r => r ? 0.1 : 2.0).ToList();
        var result = PairedComparison.Of(first, second, firstLoss, secondLoss, seed: 1);
        Assert.Equal((200, 5, 25), (result.Images, result.OnlyFirstRight, result.OnlySecondRight));
        Assert.Equal(0.10, result.AccuracyGain, 12);
        Assert.True(result.SecondIsBetter());
        Assert.InRange(result.McNemarP, 0.0001, 0.001);
        Assert.InRange(0.10, result.AccuracyGainInterval.Low, result.AccuracyGainInterval.High);
        Assert.True(result.AccuracyGainInterval.Low > 0);
        Assert.True(result.LogLossGain > 0 && result.LogLossGainInterval.Low > 0);
        // Seeded: the same intervals again.
        Assert.Equal(result, PairedComparison.Of(first, second, firstLoss, secondLoss, seed: 1));
    }

    [Fact]
    public void TheSameClassifierTwiceIsNeverBetter()
    {
        var right = Enumerable.Range(0, 50).Select(i => i % 3 != 0).ToList();
        var loss = right.Select(r => r ? 0.2 : 1.5).ToList();
        var result = PairedComparison.Of(right, right, loss, loss);
        Assert.False(result.SecondIsBetter());
        Assert.Equal(1.0, result.McNemarP);
        Assert.Equal((0.0, 0.0), result.AccuracyGainInterval);
    }
}
