using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// Model zips altered as an attacker or a broken disk would: zip bombs, entries outside the archive, a second ONNX entry,
/// altered classes, missing or empty entries. Every command (predict, info, export) reads a model through one checked path
/// and refuses each with one line naming the file, and a failed load leaves nothing in the temp folder.
/// </summary>
public sealed class HostileModelZipTests : IClassFixture<EndToEndTests.TrainedSample>
{
    private const string OnnxEntry = "TransformerChain/Transform_000/Transform_002/OnnxModel";
    private readonly EndToEndTests.TrainedSample _sample;

    public HostileModelZipTests(EndToEndTests.TrainedSample sample) => _sample = sample;

    private string Image => _sample.TestImages[0];

    /// <summary>predict, info and export all exit non-zero with one line that names the zip and says each of <paramref name="mustContain"/>.</summary>
    private void AllCommandsRefuse(string zip, params string[] mustContain)
    {
        foreach (var args in new[] { new[] { "predict", zip, Image }, ["info", zip], ["export", zip, "--out", zip + ".onnx"] })
        {
            var run = Processes.Run(Processes.CliDll, args);
            Assert.True(run.ExitCode != 0, $"{args[0]} accepted it: {run.StdOut}");
            var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error:", line);
            Assert.Contains(Path.GetFileName(zip), line);
            foreach (var text in mustContain)
                Assert.True(line.Contains(text, StringComparison.Ordinal), $"{args[0]}: '{text}' is not in: {line}");
            Assert.DoesNotContain("Exception:", line);
        }
        Assert.False(File.Exists(zip + ".onnx"));
    }

    private string Copy(TestData.TempFolder temp, string name)
    {
        var zip = temp.File(name);
        File.Copy(_sample.ZipPath, zip);
        return zip;
    }

    private static void Rewrite(string zip, string entryName, byte[] content)
    {
        using var archive = ZipFile.Open(zip, ZipArchiveMode.Update);
        archive.GetEntry(entryName)?.Delete();
        using var stream = archive.CreateEntry(entryName, CompressionLevel.Optimal).Open();
        stream.Write(content);
    }

    [Fact]
    public void AnEntryStatingMoreThanItsLimitIsRefusedBeforeItInflates()
    {
        using var temp = new TestData.TempFolder();
        // Metadata of 2 MiB (limit 1 MiB), honestly stated: a bomb of the kind that ran out of memory at 3 GB.
        var big = Copy(temp, "big-metadata.zip");
        Rewrite(big, ModelMetadata.EntryName, new byte[2 << 20]);
        AllCommandsRefuse(big, ModelMetadata.EntryName, "zip bomb");
        // An ONNX entry that states 2 GiB: refused from the central directory, nothing inflated or unpacked.
        var onnx = Copy(temp, "big-onnx.zip");
        ZipHeaders.SetStatedSize(onnx, OnnxEntry, 2L << 30);
        AllCommandsRefuse(onnx, "OnnxModel", "zip bomb");
    }

    [Fact]
    public void AnEntryThatInflatesPastItsStatedSizeIsRefused()
    {
        using var temp = new TestData.TempFolder();
        var zip = Copy(temp, "lying.zip");
        var metadata = ReadEntry(zip, ModelMetadata.EntryName);
        Rewrite(zip, ModelMetadata.EntryName, [.. metadata, .. new byte[1 << 19]]);
        // The headers now say the entry is as small as the real metadata; it inflates to half a MiB more. Read no further
        // than stated, what it inflates to is not what the zip recorded.
        ZipHeaders.SetStatedSize(zip, ModelMetadata.EntryName, metadata.Length);
        AllCommandsRefuse(zip, ModelMetadata.EntryName, "damaged");
    }

    [Fact]
    public void AnEntryNameOutsideTheArchiveOrASecondOnnxEntryIsRefusedByEveryCommand()
    {
        using var temp = new TestData.TempFolder();
        var onnx = ReadEntry(_sample.ZipPath, OnnxEntry);
        var escaping = Copy(temp, "dotdot.zip");
        Rewrite(escaping, "../../x/OnnxModel", onnx);
        AllCommandsRefuse(escaping, "../../x/OnnxModel", "not a relative path inside the archive");

        // A second ONNX entry with a shorter name was what export and retrain read, while predict ran the real one.
        var second = Copy(temp, "second.zip");
        Rewrite(second, "TransformerChain/OnnxModel", onnx);
        AllCommandsRefuse(second, "2 ONNX entries");
    }

    [Fact]
    public void AlteredClassesAreRefusedByExportAsByPredict()
    {
        using var temp = new TestData.TempFolder();
        var zip = Copy(temp, "classes.zip");
        var json = System.Text.Encoding.UTF8.GetString(ReadEntry(zip, ModelMetadata.EntryName));
        var metadata = ModelMetadata.FromJson(json);
        var altered = metadata with { Classes = metadata.Classes.Reverse().ToList() };
        Rewrite(zip, ModelMetadata.EntryName, System.Text.Encoding.UTF8.GetBytes(altered.ToJson()));
        AllCommandsRefuse(zip, "classes in its metadata do not match");
    }

    [Theory]
    [InlineData("head", "'head' is null")]
    [InlineData("imagesPerSplit", "'training.imagesPerSplit' is null")]
    [InlineData("classes", "'classes[]' is null")]
    public void MetadataWithANullWhereNoneMayBeIsOneSentence(string field, string says)
    {
        using var temp = new TestData.TempFolder();
        var zip = Copy(temp, $"null-{field}.zip");
        var json = System.Text.Json.Nodes.JsonNode.Parse(ReadEntry(zip, ModelMetadata.EntryName))!.AsObject();
        // Format 1 is migrated on reading, which is where a null head or split count used to throw.
        json["formatVersion"] = 1;
        if (field == "imagesPerSplit")
            json["training"]!["imagesPerSplit"] = null;
        else if (field == "classes")
            json["classes"] = new System.Text.Json.Nodes.JsonArray(null, "x");
        else
            json[field] = null;
        Rewrite(zip, ModelMetadata.EntryName, System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()));
        AllCommandsRefuse(zip, ModelMetadata.EntryName, "is damaged", says);
    }

    [Theory]
    [InlineData("no-schema")]
    [InlineData("empty-onnx")]
    [InlineData("negative-onnx")]
    [InlineData("garbage-onnx")]
    [InlineData("crc")]
    public void ABrokenEntryIsOneSentenceNamingTheFile(string damage)
    {
        using var temp = new TestData.TempFolder();
        var zip = Copy(temp, damage + ".zip");
        string[] says;
        switch (damage)
        {
            case "no-schema":
                using (var archive = ZipFile.Open(zip, ZipArchiveMode.Update))
                    archive.GetEntry("Schema")!.Delete();
                says = ["'Schema'"];
                break;
            case "empty-onnx":
                Rewrite(zip, OnnxEntry, [0, 0, 0, 0]);
                says = ["ONNX entry", "empty or damaged"];
                break;
            case "negative-onnx":
                Rewrite(zip, OnnxEntry, [0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
                says = ["ONNX entry", "empty or damaged"];
                break;
            case "garbage-onnx":
                var garbage = new byte[4 + 5000];
                new Random(1).NextBytes(garbage);
                BinaryPrimitives.WriteInt32LittleEndian(garbage, 5000);
                Rewrite(zip, OnnxEntry, garbage);
                says = ["cannot be loaded by ML.NET"];
                break;
            default:
                ZipHeaders.FlipStoredByte(zip, OnnxEntry);
                says = ["OnnxModel"];
                break;
        }
        AllCommandsRefuse(zip, says);
    }

    [Fact]
    public void AFailedLoadLeavesNoUnpackedOnnxBehind()
    {
        using var temp = new TestData.TempFolder();
        var zip = Copy(temp, "late-failure.zip");
        // The last step of the chain is damaged (CRC intact): ML.NET has unpacked the 64 MB ONNX by the time it fails.
        var key = ReadEntry(zip, "TransformerChain/Transform_002/Model.key");
        key.AsSpan(8, 32).Fill(0x5a);
        Rewrite(zip, "TransformerChain/Transform_002/Model.key", key);
        var tempFolder = Directory.CreateDirectory(temp.File("ml-temp")).FullName;
        for (int i = 0; i < 2; i++)
        {
            var e = Assert.Throws<ModelLoadException>(() => ImageClassifier.Load(zip, new MLContext(1) { TempFilePath = tempFolder }));
            Assert.Contains("late-failure.zip", e.Message);
            Assert.Empty(Directory.GetFiles(tempFolder, "*", SearchOption.AllDirectories));
        }
    }

    [Fact]
    public void PredictOnAnEmptyFolderSaysSoNamingIt()
    {
        using var temp = new TestData.TempFolder();
        var empty = Directory.CreateDirectory(temp.File("nothing-here")).FullName;
        var run = Processes.Run(Processes.CliDll, "predict", _sample.ZipPath, empty);
        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("nothing-here", line);
        Assert.Contains("no images found", line);
        Assert.DoesNotContain("Exception", line);
    }

    private static byte[] ReadEntry(string zip, string name)
    {
        using var archive = ZipFile.OpenRead(zip);
        using var stream = archive.GetEntry(name)!.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Edits a zip's headers in place, as a crafted file would have them.</summary>
    private static class ZipHeaders
    {
        /// <summary>Sets the uncompressed size an entry states, in its central directory record and its local header.</summary>
        public static void SetStatedSize(string zip, string entry, long size)
        {
            var bytes = File.ReadAllBytes(zip);
            var (central, local) = Find(bytes, entry);
            uint value = size >= uint.MaxValue ? uint.MaxValue - 1 : (uint)size;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(central + 24), value);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(local + 22), value);
            File.WriteAllBytes(zip, bytes);
        }

        /// <summary>Flips one byte in the middle of an entry's compressed data.</summary>
        public static void FlipStoredByte(string zip, string entry)
        {
            var bytes = File.ReadAllBytes(zip);
            var (central, local) = Find(bytes, entry);
            uint compressed = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(central + 20));
            int data = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 26)) + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 28));
            bytes[data + (int)(compressed / 2)] ^= 0x10;
            File.WriteAllBytes(zip, bytes);
        }

        private static (int Central, int Local) Find(byte[] bytes, string entry)
        {
            int end = bytes.Length - 22;
            while (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(end)) != 0x06054b50)
                end--;
            int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(end + 16));
            int count = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(end + 10));
            for (int i = 0; i < count; i++)
            {
                int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset + 28));
                int extra = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset + 30));
                int comment = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset + 32));
                var name = System.Text.Encoding.UTF8.GetString(bytes, offset + 46, nameLength);
                if (name == entry)
                    return (offset, (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 42)));
                offset += 46 + nameLength + extra + comment;
            }
            throw new InvalidOperationException($"no entry {entry}");
        }
    }
}
