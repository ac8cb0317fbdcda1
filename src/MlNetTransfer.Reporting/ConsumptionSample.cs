namespace MlNetTransfer.Reporting;

/// <summary>
/// A C# file written beside a trained model (as Model Builder does): how an app loads the zip and predicts with stock
/// ML.NET, one thread (a PredictionEngine) and many (a pool of engines), from a file path or from an image in memory
/// (an <c>MLImage</c> or the file's bytes, handed to the zip's steps after its image loader).
/// </summary>
public static class ConsumptionSample
{
    /// <param name="modelPath">The model zip.</param>
    /// <param name="classes">Its classes.</param>
    /// <param name="unknownThreshold">The zip's novelty threshold (metadata), when it has a Novelty column.</param>
    public static string Write(string modelPath, IReadOnlyList<string> classes, double? unknownThreshold = null)
    {
        var file = Path.GetFileName(modelPath);
        var name = string.Concat(Path.GetFileNameWithoutExtension(modelPath).Select((c, i) => char.IsLetterOrDigit(c) ? (i == 0 ? char.ToUpperInvariant(c) : c) : '_'));
        if (name.Length == 0 || char.IsDigit(name[0])) name = "Model" + name;
        var path = Path.ChangeExtension(Path.GetFullPath(modelPath), ".consumption.cs");
        // Names from the data reach the code only as escaped string literals, and comments only escaped: a class folder
        // named "x\n#error" must stay a string.
        var shownFile = IO.PrintableText.Escape(file);
        var classList = string.Join(", ", classes.Select(Literal));
        var noveltyMember = unknownThreshold is not { } threshold ? "" : $$"""


                /// <summary>Novelty (one value): how unlike the training images this image is. Above {{name}}.UnknownThreshold, answer "unknown".</summary>
                public float[] Novelty { get; set; } = [];

                /// <summary>The image is likely of none of the classes, whatever PredictedLabel says.</summary>
                [NoColumn]
                public bool IsUnknown => Novelty.Length > 0 && Novelty[0] > {{name}}.UnknownThreshold;
            """;
        var thresholdMember = unknownThreshold is not { } t ? "" : $$"""


                /// <summary>The model's novelty threshold (its metadata, MlNetTransfer/model.json "novelty"; set on the training images).</summary>
                public const double UnknownThreshold = {{t.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}};
            """;
        var text = $$"""
            // How to use {{shownFile}} in your app (written by mlnet-transfer train).
            // Packages: Microsoft.ML 5.0.1, Microsoft.ML.ImageAnalytics 5.0.1, Microsoft.ML.OnnxTransformer 5.0.1,
            // Microsoft.ML.OnnxRuntime 1.31.1. Nothing of MlNetTransfer is needed. Copy {{shownFile}} next to your app.
            // Orientation: ML.NET's image loader and MLImage.CreateFromStream ignore EXIF orientation (dotnet/machinelearning
            // #6592) while training turned every photo upright by it, so give phone photos upright (or predict with
            // MlNetTransfer's ImageClassifier, which turns them).
            using System.Collections.Concurrent;
            using Microsoft.ML;
            using Microsoft.ML.Data;
            using Microsoft.ML.Transforms.Image;

            public class {{name}}Input
            {
                /// <summary>Path of the image file (absolute, or relative to the working folder).</summary>
                public string ImagePath { get; set; } = "";
            }

            /// <summary>An image already in memory, for the model's steps after its image loader (no file needed).</summary>
            public class {{name}}ImageInput
            {
                /// <summary>The decoded image, upright, any size (the model resizes it). Named as the column the zip's image loader writes.</summary>
                [ImageType(1, 1)]
                public MLImage? Image { get; set; }
            }

            public class {{name}}Output
            {
                public string PredictedLabel { get; set; } = "";

                /// <summary>One probability per class, in the order of <see cref="{{name}}.Classes"/>.</summary>
                public float[] Score { get; set; } = [];{{noveltyMember}}
            }

            /// <summary>One thread: a single PredictionEngine (it is not thread-safe).</summary>
            public static class {{name}}
            {
                public const string ModelPath = {{Literal(file)}};{{thresholdMember}}

                /// <summary>The classes the model was trained on, in the order of Score (the model's own slot names are <see cref="Classes"/>).</summary>
                public static readonly string[] TrainedClasses = [{{classList}}];

                private static readonly Lazy<(MLContext Ml, ITransformer Model, PredictionEngine<{{name}}Input, {{name}}Output> Engine)> Loaded = new(() =>
                {
                    var ml = new MLContext();
                    var model = ml.Model.Load(ModelPath, out var schema);
                    return (ml, model, ml.Model.CreatePredictionEngine<{{name}}Input, {{name}}Output>(model, schema));
                });

                private static readonly Lazy<PredictionEngine<{{name}}ImageInput, {{name}}Output>> InMemory = new(() =>
                    Loaded.Value.Ml.Model.CreatePredictionEngine<{{name}}ImageInput, {{name}}Output>(AfterImageLoader(Loaded.Value.Model)));

                public static string[] Classes
                {
                    get
                    {
                        VBuffer<ReadOnlyMemory<char>> names = default;
                        Loaded.Value.Engine.OutputSchema["Score"].GetSlotNames(ref names);
                        return names.DenseValues().Select(n => n.ToString()).ToArray();
                    }
                }

                public static {{name}}Output Predict(string imagePath) => Loaded.Value.Engine.Predict(new {{name}}Input { ImagePath = imagePath });

                /// <summary>An image in memory (e.g. MLImage.CreateFromStream, a camera frame), taken as is: give it upright.</summary>
                public static {{name}}Output Predict(MLImage image) => InMemory.Value.Predict(new {{name}}ImageInput { Image = image });

                /// <summary>An image file's bytes (an upload, a blob), decoded as ML.NET's loader decodes a file (EXIF orientation ignored).</summary>
                public static {{name}}Output Predict(byte[] image)
                {
                    using var stream = new MemoryStream(image);
                    using var decoded = MLImage.CreateFromStream(stream);
                    return Predict(decoded);
                }

                /// <summary>The model's steps after its image loader: they take the decoded image the loader would have made.</summary>
                public static ITransformer AfterImageLoader(ITransformer model)
                {
                    var steps = Flatten(model).ToList();
                    int loader = steps.FindIndex(t => t is ImageLoadingTransformer);
                    return new TransformerChain<ITransformer>(steps.Skip(loader + 1).ToArray());
                }

                private static IEnumerable<ITransformer> Flatten(ITransformer t) =>
                    t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { t };
            }

            /// <summary>Many threads (web apps, services): a pool of engines over one loaded model. Register it as a singleton.</summary>
            public sealed class {{name}}Pool : IDisposable
            {
                private readonly MLContext _ml = new();
                private readonly ITransformer _model;
                private readonly DataViewSchema _schema;
                private readonly ConcurrentBag<PredictionEngine<{{name}}Input, {{name}}Output>> _idle = new();
                private readonly ConcurrentBag<PredictionEngine<{{name}}Input, {{name}}Output>> _all = new();
                private readonly ITransformer _afterLoader;
                private readonly ConcurrentBag<PredictionEngine<{{name}}ImageInput, {{name}}Output>> _idleInMemory = new();
                private readonly ConcurrentBag<PredictionEngine<{{name}}ImageInput, {{name}}Output>> _allInMemory = new();

                public {{name}}Pool(string modelPath = {{name}}.ModelPath)
                {
                    _model = _ml.Model.Load(modelPath, out _schema);
                    _afterLoader = {{name}}.AfterImageLoader(_model);
                }

                public {{name}}Output Predict(string imagePath)
                {
                    if (!_idle.TryTake(out var engine))
                    {
                        engine = _ml.Model.CreatePredictionEngine<{{name}}Input, {{name}}Output>(_model, _schema);
                        _all.Add(engine);
                    }
                    try { return engine.Predict(new {{name}}Input { ImagePath = imagePath }); }
                    finally { _idle.Add(engine); }
                }

                /// <summary>An image in memory, taken as is (give it upright), as {{name}}.Predict(MLImage).</summary>
                public {{name}}Output Predict(MLImage image)
                {
                    if (!_idleInMemory.TryTake(out var engine))
                    {
                        engine = _ml.Model.CreatePredictionEngine<{{name}}ImageInput, {{name}}Output>(_afterLoader);
                        _allInMemory.Add(engine);
                    }
                    try { return engine.Predict(new {{name}}ImageInput { Image = image }); }
                    finally { _idleInMemory.Add(engine); }
                }

                /// <summary>An image file's bytes, as {{name}}.Predict(byte[]).</summary>
                public {{name}}Output Predict(byte[] image)
                {
                    using var stream = new MemoryStream(image);
                    using var decoded = MLImage.CreateFromStream(stream);
                    return Predict(decoded);
                }

                // Disposing the model and engines lets ML.NET delete the ONNX file it unpacked to the temp folder.
                public void Dispose()
                {
                    foreach (var engine in _all) engine.Dispose();
                    foreach (var engine in _allInMemory) engine.Dispose();
                    (_model as IDisposable)?.Dispose();
                }
            }

            """;
        IO.AtomicFile.WriteAllText(path, text);
        return path;
    }

    /// <summary>A C# regular string literal of <paramref name="value"/>: quotes and backslashes escaped, and every character outside printable ASCII written as <c>\uXXXX</c> (so nothing can end a line, hide text, or be mangled by an encoding).</summary>
    internal static string Literal(string value)
    {
        var sb = new System.Text.StringBuilder(value.Length + 2).Append('"');
        foreach (char c in value)
        {
            if (c is '"' or '\\')
                sb.Append('\\').Append(c);
            else if (c < 0x20 || c > 0x7e)
                sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
        return sb.Append('"').ToString();
    }
}
