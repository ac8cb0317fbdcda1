using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MlNetTransfer.Inference;

/// <summary>
/// Saves and opens model zips: a standard ML.NET model (<c>mlContext.Model.Load</c> reads it with stock packages)
/// plus our metadata entry. Saving is atomic: a killed process leaves the previous model intact. Every command opens a
/// model through <see cref="Open"/>: the zip's structure is checked first (<see cref="ModelZip"/>), then ML.NET loads it,
/// then its classes are checked against the metadata, so predict, evaluate, export, info and retrain see one truth.
/// </summary>
internal static class ModelArchive
{
    public static void Save(MLContext ml, ITransformer model, DataViewSchema inputSchema, ModelMetadata metadata, string path) =>
        IO.AtomicFile.Write(path, stream =>
        {
            ml.Model.Save(model, inputSchema, stream);
            stream.Position = 0;
            using var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true);
            var entry = zip.CreateEntry(ModelMetadata.EntryName, CompressionLevel.Optimal);
            using var writer = new StreamWriter(entry.Open(), new UTF8Encoding(false));
            writer.Write(metadata.ToJson());
        });

    /// <summary>
    /// Opens a model zip for use: checks its structure, loads it with ML.NET (the ONNX files it unpacks go to a folder of
    /// this load's own under <c>MLContext.TempFilePath</c>, removed when the package is disposed or the load fails), and checks it is an image classifier
    /// whose classes are the ones its metadata names. Throws <see cref="ModelLoadException"/> naming the file.
    /// </summary>
    public static ModelPackage Open(string path, MLContext? ml = null)
    {
        path = Path.GetFullPath(path);
        var zip = ModelZip.Inspect(path);
        var metadata = ReadMetadata(zip);
        // A model of this tool holds one ONNX graph: with two, what export or retrain would read might not be what runs.
        if (metadata is not null)
            zip.RequireOneOnnxEntry();
        ml ??= new MLContext();
        var previousTemp = ml.TempFilePath;
        // Under the context's own temp folder (where the caller wants ML.NET's files), in a folder of this load.
        var temp = IO.TempFiles.NewFolder(Path.Combine(string.IsNullOrEmpty(previousTemp) ? Path.GetTempPath() : previousTemp, "MlNetTransfer-models"));
        ITransformer? model = null;
        try
        {
            ml.TempFilePath = temp;
            DataViewSchema inputSchema;
            try
            {
                model = ml.Model.Load(path, out inputSchema);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new ModelLoadException($"'{path}' cannot be loaded by ML.NET: {RootCause(e)}", e);
            }
            finally
            {
                ml.TempFilePath = previousTemp;
            }
            var classes = CheckClassifier(path, model, inputSchema, metadata);
            return new ModelPackage(zip, model, inputSchema, classes, metadata, temp);
        }
        catch
        {
            (model as IDisposable)?.Dispose();
            IO.TempFiles.TryDeleteFolder(temp);
            throw;
        }
    }

    /// <summary>Our metadata, or null for a plain ML.NET zip; structure checked, classes not (<see cref="Open"/> does that).</summary>
    public static ModelMetadata? ReadMetadata(string path) => ReadMetadata(ModelZip.Inspect(path));

    /// <summary>The featurizer ONNX embedded in a model zip; structure checked, classes not (<see cref="Open"/> does that).</summary>
    public static byte[] ReadEmbeddedOnnx(string path) => ModelZip.Inspect(path).ReadOnnx();

    private static ModelMetadata? ReadMetadata(ModelZip zip)
    {
        if (zip.ReadMetadataText() is not { } json)
            return null;
        try
        {
            return ModelMetadata.FromJson(json);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ModelLoadException($"'{zip.Path}': its {ModelMetadata.EntryName} is damaged: {IO.PrintableText.Escape(e.Message)}", e);
        }
    }

    /// <summary>An image classifier's input and outputs; its class names, which must be the metadata's.</summary>
    private static IReadOnlyList<string> CheckClassifier(string path, ITransformer model, DataViewSchema inputSchema, ModelMetadata? metadata)
    {
        if (inputSchema.GetColumnOrNull(nameof(ModelInput.ImagePath)) is null)
            throw new ModelLoadException($"'{path}' is an ML.NET model but not an image classifier of this tool: it has no ImagePath input.");
        DataViewSchema output;
        try
        {
            output = model.GetOutputSchema(inputSchema);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new ModelLoadException($"'{path}' is an ML.NET model whose steps do not fit together: {RootCause(e)}", e);
        }
        if (output.GetColumnOrNull(nameof(ModelOutput.Score)) is not { } score || output.GetColumnOrNull(nameof(ModelOutput.PredictedLabel)) is null)
            throw new ModelLoadException($"'{path}' is an ML.NET model but not a classifier: it has no Score/PredictedLabel output.");
        VBuffer<ReadOnlyMemory<char>> names = default;
        if (!score.HasSlotNames())
            throw new ModelLoadException($"'{path}' is an ML.NET classifier without class names on its Score column.");
        score.GetSlotNames(ref names);
        var classes = names.DenseValues().Select(n => n.ToString()).ToList();
        if (metadata is not null && !classes.SequenceEqual(metadata.Classes))
            throw new ModelLoadException($"'{path}': the classes in its metadata do not match the model's; the file was altered.");
        return classes;
    }

    /// <summary>The innermost message (ML.NET wraps the reason in "Error during class instantiation" and reflection's wrappers).</summary>
    private static string RootCause(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null)
            inner = inner.InnerException;
        var message = inner.Message.Trim().TrimEnd('.');
        return IO.PrintableText.Escape($"{message} ({inner.GetType().Name}).");
    }
}
