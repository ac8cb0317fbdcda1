// An app as a customer writes it, with stock ML.NET packages only (Microsoft.ML, ImageAnalytics, OnnxTransformer,
// OnnxRuntime): load the model zip that MlNetTransfer saved and predict. Nothing here knows MlNetTransfer.
//
//   StockConsumer [--in-memory] <model.zip> <image> [<image> ...]   -> one JSON line per image: path, label, scores by
//   class, and the novelty score where the zip has a Novelty column
//
// --in-memory: as an app holding images in memory (an upload, a camera frame) does: each file's bytes are read, made an
// MLImage (MLImage.CreateFromStream), and handed to the model's steps after its image loader (the zip's chain without
// its ImageLoadingTransformer), so no file is needed. Like ML.NET's own loader, MLImage.CreateFromStream ignores EXIF
// orientation (dotnet/machinelearning #6592): an app must give phone photos upright.
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

var inMemory = args.Length > 0 && args[0] == "--in-memory";
var rest = inMemory ? args[1..] : args;
if (rest.Length < 2)
{
    Console.Error.WriteLine("usage: StockConsumer [--in-memory] <model.zip> <image>...");
    return 2;
}

var mlContext = new MLContext();
// Dispose the model and the engine: ML.NET deletes the ONNX files it unpacked to the temp folder only then.
var model = mlContext.Model.Load(rest[0], out var inputSchema);
try
{
    var outputSchema = model.GetOutputSchema(inputSchema);
    VBuffer<ReadOnlyMemory<char>> slotNames = default;
    outputSchema["Score"].GetSlotNames(ref slotNames);
    var classes = slotNames.DenseValues().Select(n => n.ToString()).ToArray();
    var images = rest.Skip(1).Select(Path.GetFullPath).ToList();
    if (outputSchema.GetColumnOrNull("Novelty") is not null)
        Run<ImagePredictionWithNovelty>(p => p.PredictedLabel, p => p.Score, p => p.Novelty[0]);
    else
        Run<ImagePrediction>(p => p.PredictedLabel, p => p.Score, null);

    void Run<TOutput>(Func<TOutput, string> label, Func<TOutput, float[]> score, Func<TOutput, float>? novelty) where TOutput : class, new()
    {
        void Write(string path, TOutput prediction)
        {
            var scores = classes.Select((c, i) => new KeyValuePair<string, float>(c, score(prediction)[i])).ToDictionary();
            Console.WriteLine(novelty is null
                ? JsonSerializer.Serialize(new { path, label = label(prediction), scores })
                : JsonSerializer.Serialize(new { path, label = label(prediction), scores, novelty = novelty(prediction) }));
        }

        if (!inMemory)
        {
            using var engine = mlContext.Model.CreatePredictionEngine<ImageInput, TOutput>(model, inputSchema);
            foreach (var path in images)
                Write(path, engine.Predict(new ImageInput { ImagePath = path }));
            return;
        }

        // The steps after the image loader, fed the loader's output column (its name read from the loader itself).
        var steps = Flatten(model).ToList();
        int at = steps.FindIndex(t => t is ImageLoadingTransformer);
        if (at < 0)
            throw new InvalidOperationException($"{rest[0]} has no ImageLoadingTransformer");
        var afterLoader = new TransformerChain<ITransformer>(steps.Skip(at + 1).ToArray());
        var input = SchemaDefinition.Create(typeof(InMemoryImageInput));
        // The column the loader adds: the last image column of its output (an added column comes after the input's).
        var beforeLoader = steps.Take(at).Aggregate(inputSchema, (schema, step) => step.GetOutputSchema(schema));
        input[nameof(InMemoryImageInput.Image)].ColumnName = steps[at].GetOutputSchema(beforeLoader).Last(c => c.Type is ImageDataViewType).Name;
        using var inMemoryEngine = mlContext.Model.CreatePredictionEngine<InMemoryImageInput, TOutput>(afterLoader, inputSchemaDefinition: input);
        foreach (var path in images)
        {
            using var stream = new MemoryStream(File.ReadAllBytes(path));
            using var image = MLImage.CreateFromStream(stream);
            Write(path, inMemoryEngine.Predict(new InMemoryImageInput { Image = image }));
        }
    }
}
finally
{
    (model as IDisposable)?.Dispose();
}
return 0;

static IEnumerable<ITransformer> Flatten(ITransformer t) => t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [t];

/// <summary>The model's input: an image path.</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The input of the steps after the image loader: a decoded image (any size: the model resizes it).</summary>
public sealed class InMemoryImageInput
{
    // ML.NET needs a size to register an image column; ResizeImages, the next step, takes any.
    [ImageType(1, 1)]
    public MLImage? Image { get; set; }
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
