// An app as a customer writes it, with stock ML.NET packages only (Microsoft.ML, ImageAnalytics, OnnxTransformer,
// OnnxRuntime): load the model zip that MlNetTransfer saved and predict. Nothing here knows MlNetTransfer.
//
//   StockConsumer <model.zip> <image> [<image> ...]   -> one JSON line per image: path, label, scores by class, and the
//   novelty score where the zip has a Novelty column
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: StockConsumer <model.zip> <image>...");
    return 2;
}

var mlContext = new MLContext();
// Dispose the model and the engine: ML.NET deletes the ONNX files it unpacked to the temp folder only then.
var model = mlContext.Model.Load(args[0], out var inputSchema);
try
{
    var outputSchema = model.GetOutputSchema(inputSchema);
    VBuffer<ReadOnlyMemory<char>> slotNames = default;
    outputSchema["Score"].GetSlotNames(ref slotNames);
    var classes = slotNames.DenseValues().Select(n => n.ToString()).ToArray();
    if (outputSchema.GetColumnOrNull("Novelty") is not null)
    {
        using var engine = mlContext.Model.CreatePredictionEngine<ImageInput, ImagePredictionWithNovelty>(model, inputSchema);
        foreach (var path in args.Skip(1))
        {
            var prediction = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(path) });
            var scores = classes.Select((c, i) => new KeyValuePair<string, float>(c, prediction.Score[i])).ToDictionary();
            Console.WriteLine(JsonSerializer.Serialize(new { path = Path.GetFullPath(path), label = prediction.PredictedLabel, scores, novelty = prediction.Novelty[0] }));
        }
    }
    else
    {
        using var engine = mlContext.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(model, inputSchema);
        foreach (var path in args.Skip(1))
        {
            var prediction = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(path) });
            var scores = classes.Select((c, i) => new KeyValuePair<string, float>(c, prediction.Score[i])).ToDictionary();
            Console.WriteLine(JsonSerializer.Serialize(new { path = Path.GetFullPath(path), label = prediction.PredictedLabel, scores }));
        }
    }
}
finally
{
    (model as IDisposable)?.Dispose();
}
return 0;

/// <summary>The model's input: an image path.</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The model's output: the label and one probability per class.</summary>
public sealed class ImagePrediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}

/// <summary>The same, from a zip with a Novelty column: one value, higher for images unlike the training ones.</summary>
public sealed class ImagePredictionWithNovelty
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
    public float[] Novelty { get; set; } = [];
}
