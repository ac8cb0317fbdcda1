using Microsoft.ML;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>Broken or mismatched models and ONNX files: one line naming the file and what is wrong, non-zero exit.</summary>
public class BrokenModelTests
{
    private static string Image => Directory.GetFiles(Path.Combine(TestData.FashionSample, "test", "bag")).Order(StringComparer.Ordinal).First();

    private static void AssertOneLineError(Processes.Result run, params string[] mustContain)
    {
        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error:", line);
        foreach (var text in mustContain)
            Assert.Contains(text, line);
    }

    [Fact]
    public void TruncatedModelZip()
    {
        using var temp = new TestData.TempFolder();
        var zip = temp.File("model.zip");
        // The first bytes of a real zip: a local header and then nothing.
        using (var archive = System.IO.Compression.ZipFile.Open(zip, System.IO.Compression.ZipArchiveMode.Create))
        using (var writer = new StreamWriter(archive.CreateEntry("Model.key").Open()))
            writer.Write(new string('x', 5000));
        var bytes = File.ReadAllBytes(zip);
        File.WriteAllBytes(zip, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        AssertOneLineError(Processes.Run(Processes.CliDll, "predict", zip, Image), "model.zip");
        AssertOneLineError(Processes.Run(Processes.CliDll, "info", zip), "model.zip");
    }

    [Fact]
    public void ZipFromAnotherTool()
    {
        using var temp = new TestData.TempFolder();
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1, Y = 2 }, new Row { X = 2, Y = 4 } });
        var model = ml.Transforms.Concatenate("Features", "X").Append(ml.Regression.Trainers.Sdca("Y", "Features", maximumNumberOfIterations: 1)).Fit(data);
        ml.Model.Save(model, data.Schema, temp.File("regression.zip"));
        AssertOneLineError(Processes.Run(Processes.CliDll, "predict", temp.File("regression.zip"), Image), "regression.zip", "not an image classifier");
        AssertOneLineError(Processes.Run(Processes.CliDll, "export", temp.File("regression.zip")), "regression.zip");
    }

    [Fact]
    public void TruncatedOnnxConvBase()
    {
        using var temp = new TestData.TempFolder();
        var onnx = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("cut.onnx"));
        var bytes = File.ReadAllBytes(onnx);
        File.WriteAllBytes(onnx, bytes.AsSpan(0, bytes.Length / 3).ToArray());
        File.WriteAllText(onnx + ".json", """{ "channelOrder": "RGB" }""");
        AssertOneLineError(Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--base", onnx), "cut.onnx", "not a readable ONNX model");
    }

    [Fact]
    public void WrongPreprocessingSpec()
    {
        using var temp = new TestData.TempFolder();
        var onnx = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        File.WriteAllText(onnx + ".json", """{ "channelOrder": "BRG" }""");
        AssertOneLineError(Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--base", onnx), "vgg.onnx.json", "channelOrder");
        File.WriteAllText(onnx + ".json", """{ "mean": [1, 2] """);
        AssertOneLineError(Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--base", onnx), "vgg.onnx.json", "not a valid preprocessing spec");
        File.WriteAllText(onnx + ".json", """{ "layout": "NHWC" }""");
        AssertOneLineError(Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--base", onnx), "vgg.onnx", "layout");
    }

    private sealed class Row
    {
        public float X { get; set; }
        public float Y { get; set; }
    }
}
