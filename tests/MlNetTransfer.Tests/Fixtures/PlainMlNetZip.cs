using Microsoft.ML;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>
/// A model zip made with plain ML.NET, not by MlNetTransfer: an image classifier whose loader writes a column of its own
/// name (<c>Picture</c>), on a few Fashion images; its input is the path alone.
/// </summary>
public static class PlainMlNetZip
{
    /// <summary>Writes it to <paramref name="zip"/>; returns the images it trained on (path and label).</summary>
    public static IReadOnlyList<(string Path, string Label)> Write(string zip)
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.FashionSubset(2, 4, 1).Train.Select(i => new PathAndLabel { ImagePath = i.Path, Label = i.Label }).ToList();
        // The label's key mapping is fitted apart, so the saved model's input is the path alone.
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var pipeline = ml.Transforms.LoadImages("Picture", imageFolder: null, inputColumnName: "ImagePath")
            .Append(ml.Transforms.ResizeImages("Small", 8, 8, "Picture"))
            .Append(ml.Transforms.ExtractPixels("Features", "Small"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(maximumNumberOfIterations: 5))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        ml.Model.Save(pipeline.Fit(data), ml.Data.LoadFromEnumerable(rows.Select(r => new PathOnly { ImagePath = r.ImagePath })).Schema, zip);
        return rows.Select(r => (r.ImagePath, r.Label)).ToList();
    }

    private sealed class PathOnly
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class PathAndLabel
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
