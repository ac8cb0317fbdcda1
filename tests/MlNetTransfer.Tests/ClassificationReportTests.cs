using MlNetTransfer.Evaluation;

namespace MlNetTransfer.Tests;

public class ClassificationReportTests
{
    [Fact]
    public void MetricsMatchAHandWorkedExample()
    {
        string[] classes = ["a", "b", "c"];
        // actual a: a, a, b ; actual b: b, c ; actual c: c
        var results = new List<(string, string, float[])>
        {
            ("1", "a", [0.8f, 0.1f, 0.1f]),
            ("2", "a", [0.6f, 0.3f, 0.1f]),
            ("3", "a", [0.2f, 0.7f, 0.1f]),
            ("4", "b", [0.1f, 0.5f, 0.4f]),
            ("5", "b", [0.1f, 0.2f, 0.7f]),
            ("6", "c", [0.0f, 0.1f, 0.9f]),
        };

        var report = ClassificationReport.Create("validation", classes, results);

        Assert.Equal([[2, 1, 0], [0, 1, 1], [0, 0, 1]], report.ConfusionMatrix);
        Assert.Equal(4 / 6.0, report.MicroAccuracy, 10);
        Assert.Equal((2 / 3.0 + 1 / 2.0 + 1.0) / 3, report.MacroAccuracy, 10);
        var b = report.PerClass[1];
        Assert.Equal(0.5, b.Precision, 10);
        Assert.Equal(0.5, b.Recall, 10);
        Assert.Equal(0.5, b.F1, 10);
        var c = report.PerClass[2];
        Assert.Equal(0.5, c.Precision, 10);
        Assert.Equal(1.0, c.Recall, 10);
        double expectedLogLoss = -(Math.Log(0.8) + Math.Log(0.6) + Math.Log(0.2) + Math.Log(0.5) + Math.Log(0.2) + Math.Log(0.9)) / 6;
        Assert.Equal(expectedLogLoss, report.LogLoss, 5);
        Assert.Equal("3", report.TopLosses(1)[0].Path);
        Assert.Equal(("a", "b", 1), report.MostConfused(1)[0]);

        // Every accuracy and recall comes with its Wilson 95 % interval: 4 of 6 right is anywhere from 0.30 to 0.90.
        Assert.Equal(4, report.Correct);
        Assert.Equal(0.300, report.AccuracyInterval.Low, 3);
        Assert.Equal(0.903, report.AccuracyInterval.High, 3);
        Assert.Equal(WilsonInterval.Of(1, 1), (c.RecallLow, c.RecallHigh));
        Assert.Equal(0.207, c.RecallLow, 3);
        using var json = System.Text.Json.JsonDocument.Parse(report.ToJson(includeImages: false));
        Assert.Equal(report.AccuracyInterval.Low, json.RootElement.GetProperty("accuracyLow").GetDouble(), 10);
        Assert.Equal(report.AccuracyInterval.High, json.RootElement.GetProperty("accuracyHigh").GetDouble(), 10);
        Assert.Equal(b.RecallHigh, json.RootElement.GetProperty("perClass")[1].GetProperty("recallHigh").GetDouble(), 10);
    }
}
