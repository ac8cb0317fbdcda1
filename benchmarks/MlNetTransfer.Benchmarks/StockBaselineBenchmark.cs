using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Data;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// What a user gets from stock ML.NET alone on the same images, as a reference for the README: the
/// <c>DnnFeaturizeImage(ResNet18)</c> chain (the same packaged weights) and <c>LbfgsMaximumEntropy</c> with its default
/// options, trained on the training split and scored on the validation split, else the test split.
/// </summary>
public static class StockBaselineBenchmark
{
    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public static int Run(string data)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var (name, held) = dataset.Validation.Count > 0 ? ("validation", dataset.Validation) : ("test", dataset.Test);
        if (held.Count == 0)
            throw new InvalidOperationException($"{data} has neither a validation nor a test split to score on");
        var ml = new MLContext(1);
        IDataView View(IEnumerable<LabeledImage> images) => ml.Data.LoadFromEnumerable(images.Select(i => new Row { ImagePath = i.Path, Label = i.Label }).ToList());
        var chain = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, "ImagePath"))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image", ImageResizingEstimator.ResizingKind.IsoCrop))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy());
        var clock = Stopwatch.StartNew();
        var model = chain.Fit(View(dataset.Train));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(View(held)));
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {FineTuneEpochBenchmark.RuntimeInfo()}");
        Console.WriteLine(FormattableString.Invariant(
            $"stock ML.NET (DnnFeaturizeImage(ResNet18) + LbfgsMaximumEntropy, defaults) on {data}: trained on {dataset.Train.Count} images, {name} ({held.Count} images) accuracy {metrics.MicroAccuracy:F4}, log-loss {metrics.LogLoss:F4}; {clock.Elapsed.TotalSeconds:F1} s"));
        (model as IDisposable)?.Dispose();
        return 0;
    }
}
