using System.Text.Json;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary><c>evaluate --against</c>: two models on the same images, compared image by image.</summary>
public sealed class CompareModelsTests : IClassFixture<EndToEndTests.TrainedSample>
{
    private readonly EndToEndTests.TrainedSample _sample;

    public CompareModelsTests(EndToEndTests.TrainedSample sample) => _sample = sample;

    [Fact]
    public void AModelAgainstItselfIsNeitherBetterAndAgainstOtherClassesIsRefused()
    {
        var same = Processes.Run(Processes.CliDll, "evaluate", _sample.ZipPath, TestData.FashionSample, "--split", "test", "--against", _sample.ZipPath, "--json");
        Assert.True(same.ExitCode == 0, same.StdErr);
        var json = JsonDocument.Parse(same.StdOut).RootElement;
        Assert.Equal(json.GetProperty("accuracy").GetDouble(), json.GetProperty("againstAccuracy").GetDouble());
        Assert.Equal(0, json.GetProperty("onlyModelRight").GetInt32() + json.GetProperty("onlyAgainstRight").GetInt32());
        Assert.Equal(1.0, json.GetProperty("mcNemarP").GetDouble());
        Assert.Equal(0.0, json.GetProperty("accuracyGain").GetDouble());
        // The sample model knows 4 of the 10 classes; the images of the others are listed, not compared.
        Assert.True(json.GetProperty("images").GetInt32() is > 0 and < 100);

        var text = Processes.Run(Processes.CliDll, "evaluate", _sample.ZipPath, TestData.FashionSample, "--split", "test", "--against", _sample.ZipPath);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("neither is more accurate beyond the noise", System.Text.RegularExpressions.Regex.Replace(text.StdOut, @"\s+", " "));
    }
}
