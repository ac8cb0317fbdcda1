using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// The README's feature-extraction figures on the shared photo sets, with the defaults the console uses.
/// Skipped, with the reason, where ../shared/data is absent.
/// </summary>
public class RealDataAccuracyTests
{
    [SkippableFact]
    public void HymenopteraValidationAccuracyReachesTheTutorialsFixedFeatureExtractor()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        using var trained = new ImageClassifierTrainer().Train(TestData.Hymenoptera);
        var report = trained.Reports[0];
        Assert.Equal("validation", report.Split);
        Assert.Equal(153, report.Count);
        Assert.True(report.MicroAccuracy >= 0.94, $"validation accuracy {report.MicroAccuracy:F4} < 0.94");
    }

    [SkippableFact]
    public void Caltech101SixClassesTestAccuracy()
    {
        TestData.RequireShared(TestData.Caltech);
        using var trained = new ImageClassifierTrainer().Train(TestData.Caltech);
        var report = trained.Reports[0];
        Assert.Equal("test", report.Split);
        Assert.True(report.MicroAccuracy >= 0.98, $"test accuracy {report.MicroAccuracy:F4} < 0.98");
    }
}
