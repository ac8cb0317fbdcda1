using System.IO.Compression;
using System.Text;
using Microsoft.ML;

namespace MlNetTransfer.Inference;

/// <summary>
/// Saves and opens model zips: a standard ML.NET model (<c>mlContext.Model.Load</c> reads it with stock packages)
/// plus our metadata entry. Saving is atomic: a killed process leaves the previous model intact.
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

    /// <summary>Our metadata, or null for a plain ML.NET zip; a clear error for anything that is not a zip.</summary>
    public static ModelMetadata? ReadMetadata(string path)
    {
        RequireFile(path);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entry = zip.GetEntry(ModelMetadata.EntryName);
            if (entry is null)
                return null;
            using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
            return ModelMetadata.FromJson(reader.ReadToEnd());
        }
        catch (InvalidDataException e)
        {
            throw new ModelLoadException($"'{path}' is not a model zip (or it is truncated): {e.Message}", e);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ModelLoadException($"'{path}': its {ModelMetadata.EntryName} is damaged: {e.Message}", e);
        }
    }

    /// <summary>
    /// The featurizer ONNX embedded in a model zip (ML.NET stores ApplyOnnxModel's file as an <c>OnnxModel</c> entry:
    /// a 32-bit length, then the bytes). Continued training starts from it.
    /// </summary>
    public static byte[] ReadEmbeddedOnnx(string path)
    {
        RequireFile(path);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entry = zip.Entries.Where(e => e.FullName.EndsWith("/OnnxModel", StringComparison.Ordinal)).OrderBy(e => e.FullName.Length).FirstOrDefault()
                        ?? throw new ModelLoadException($"'{path}' holds no ONNX model: it was not made by this tool.");
            using var stream = entry.Open();
            using var reader = new BinaryReader(stream);
            int length = reader.ReadInt32();
            var bytes = reader.ReadBytes(length);
            if (bytes.Length != length)
                throw new ModelLoadException($"'{path}': its ONNX model is truncated.");
            return bytes;
        }
        catch (InvalidDataException e)
        {
            throw new ModelLoadException($"'{path}' is not a model zip (or it is truncated): {e.Message}", e);
        }
    }

    /// <summary>Loads the ML.NET model with errors that name the file.</summary>
    public static ITransformer Load(MLContext ml, string path, out DataViewSchema inputSchema)
    {
        RequireFile(path);
        try
        {
            return ml.Model.Load(path, out inputSchema);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or InvalidOperationException or ArgumentException or EndOfStreamException)
        {
            throw new ModelLoadException($"'{path}' is not an ML.NET model this tool can load (not a zip, truncated, or from another tool): {e.Message}", e);
        }
    }

    private static void RequireFile(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException($"'{path}': model file does not exist.");
    }
}
