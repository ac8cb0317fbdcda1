using Microsoft.ML;

namespace MlNetTransfer.Inference;

/// <summary>
/// A model zip opened through <see cref="ModelArchive.Open"/>: its checked structure, the ML.NET model, its classes (the
/// metadata's, checked) and its metadata. Disposing it disposes the model and removes the ONNX files ML.NET unpacked.
/// </summary>
internal sealed class ModelPackage(ModelZip zip, ITransformer model, DataViewSchema inputSchema, IReadOnlyList<string> classes, ModelMetadata? metadata, string tempFolder)
    : IDisposable
{
    public string Path => zip.Path;

    public ITransformer Model { get; } = model;

    public DataViewSchema InputSchema { get; } = inputSchema;

    /// <summary>Class names in score order.</summary>
    public IReadOnlyList<string> Classes { get; } = classes;

    /// <summary>Our metadata; null for a zip made by other tools.</summary>
    public ModelMetadata? Metadata { get; } = metadata;

    /// <summary>Our metadata, or an error saying that <paramref name="what"/> needs it.</summary>
    public ModelMetadata RequireMetadata(string what) =>
        Metadata ?? throw new ModelLoadException($"'{Path}' was not made by MlNetTransfer: it has no {ModelMetadata.EntryName}, so {what}.");

    /// <summary>The featurizer ONNX: the model's one <c>OnnxModel</c> entry, the one ML.NET loaded.</summary>
    public byte[] ReadOnnx() => zip.ReadOnnx();

    public void Dispose()
    {
        (Model as IDisposable)?.Dispose();
        IO.TempFiles.TryDeleteFolder(tempFolder);
    }
}
