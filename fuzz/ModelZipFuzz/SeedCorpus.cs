using System.IO.Compression;
using System.Text;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// Writes fuzz/corpus-modelzip: small zips with the entry layout of a model of this tool (a real one is about 60 MB, far
/// too big for AFL), valid ones and ones broken the ways a hostile or damaged file is, plus inputs of the <c>J</c>
/// (metadata entry) and <c>O</c> (ONNX entry) modes of <see cref="Program.ToZip"/>.
/// </summary>
public static class SeedCorpus
{
    public const string Schema = "Schema";
    public const string ModelKey = "TransformerChain/Model.key";
    public const string OnnxModel = "TransformerChain/Transform_000/Transform_002/OnnxModel";
    public const string Metadata = "MlNetTransfer/model.json";

    /// <summary>
    /// The metadata of a model trained on data/fashion-mnist-sample (<c>unzip -p model.zip MlNetTransfer/model.json</c>),
    /// copied next to the harness.
    /// </summary>
    public static byte[] RealMetadata => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "model.json"));

    /// <summary>
    /// A valid ONNX ModelProto of one Identity node (ir_version 7, opset 13, float input x and output y of shape [1]),
    /// written field by field.
    /// </summary>
    public static byte[] TinyOnnx()
    {
        static byte[] Field(int number, byte[] value) => [(byte)(number << 3 | 2), .. Varint(value.Length), .. value];
        static byte[] Int(int number, long value) => [(byte)(number << 3), .. Varint(value)];
        static byte[] Str(int number, string value) => Field(number, Encoding.UTF8.GetBytes(value));
        static byte[] Varint(long v)
        {
            var bytes = new List<byte>();
            do { byte b = (byte)(v & 0x7F); v >>= 7; bytes.Add(v != 0 ? (byte)(b | 0x80) : b); } while (v != 0);
            return bytes.ToArray();
        }
        // TypeProto { tensor_type (1) { elem_type (1) = FLOAT, shape (2) { dim (1) { dim_value (1) = 1 } } } }
        byte[] type = Field(1, [.. Int(1, 1), .. Field(2, Field(1, Int(1, 1)))]);
        byte[] ValueInfo(string name) => [.. Str(1, name), .. Field(2, type)];
        byte[] node = [.. Str(1, "x"), .. Str(2, "y"), .. Str(3, "id"), .. Str(4, "Identity")];
        byte[] graph = [.. Field(1, node), .. Str(2, "g"), .. Field(11, ValueInfo("x")), .. Field(12, ValueInfo("y"))];
        return [.. Int(1, 7), .. Str(2, "fuzz"), .. Field(7, graph), .. Field(8, Int(2, 13))];
    }

    /// <summary>ML.NET's OnnxModel entry: a 32-bit little-endian length, then the ONNX bytes.</summary>
    public static byte[] OnnxEntry(byte[] onnx) => [.. BitConverter.GetBytes(onnx.Length), .. onnx];

    /// <summary>The entries of a small model zip; null leaves the default, an empty array for metadata leaves it out.</summary>
    public static List<(string Name, byte[] Bytes)> Entries(byte[]? metadata = null, byte[]? onnxEntry = null) =>
    [
        (Schema, Encoding.ASCII.GetBytes("ML.NET schema: ImagePath Text, Label Text\n")),
        (ModelKey, Encoding.ASCII.GetBytes("TransformerChain model key, version 1\n")),
        ("TransformerChain/Transform_000/Transform_002/Model.key", Encoding.ASCII.GetBytes("OnnxTransform\n")),
        (OnnxModel, onnxEntry ?? OnnxEntry(TinyOnnx())),
        .. (metadata is { Length: 0 } ? [] : new[] { (Metadata, metadata ?? RealMetadata) }),
    ];

    public static byte[] Zip(IEnumerable<(string Name, byte[] Bytes)> entries, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in entries)
            {
                using var stream = zip.CreateEntry(name, level).Open();
                stream.Write(bytes);
            }
        return memory.ToArray();
    }

    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        void Put(string name, byte[] bytes)
        {
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            Console.WriteLine($"{bytes.Length,7} {name}");
        }
        var metadata = RealMetadata;
        var deflated = Zip(Entries());
        Put("model-deflated.zip", deflated);
        Put("model-stored.zip", Zip(Entries(), CompressionLevel.NoCompression));
        Put("plain-mlnet.zip", Zip(Entries(metadata: [])));
        Put("entry-dotdot.zip", Zip([.. Entries(), ("../x", [1, 2, 3])]));
        Put("entry-duplicate.zip", Zip([.. Entries(), (Schema, [4, 5, 6])]));
        Put("no-schema.zip", Zip(Entries().Where(e => e.Name != Schema)));
        Put("two-onnx.zip", Zip([.. Entries(), ("TransformerChain/Transform_001/OnnxModel", OnnxEntry(TinyOnnx()))]));
        Put("truncated.zip", deflated[..(deflated.Length / 2)]);
        Put("size-patched-small.zip", PatchSize(deflated, Metadata, s => s / 2));
        Put("size-patched-large.zip", PatchSize(deflated, Metadata, _ => 0x7FFF_FFFF));
        Put("onnx-size-patched-huge.zip", PatchSize(Zip(Entries(), CompressionLevel.NoCompression), OnnxModel, _ => 0xFFFF_FFF0));
        Put("bad-crc.zip", FlipStoredByte(Zip(Entries(), CompressionLevel.NoCompression), Schema));
        Put("onnx-empty.zip", Zip(Entries(onnxEntry: [])));
        Put("onnx-negative-length.zip", Zip(Entries(onnxEntry: [.. BitConverter.GetBytes(-1), .. TinyOnnx()])));
        Put("onnx-random.zip", Zip(Entries(onnxEntry: OnnxEntry(Random(new Random(12), 200)))));
        // The metadata and ONNX modes: the bytes after the first go into an otherwise valid zip.
        Put("J-metadata.json", [(byte)'J', .. metadata]);
        Put("J-format1.json", [(byte)'J', .. Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(metadata)
            .Replace("\"formatVersion\": 2", "\"formatVersion\": 1").Replace("\"lbfgs-softmax\"", "\"linear\""))]);
        Put("J-empty-object.json", [(byte)'J', .. "{}"u8]);
        Put("J-null.json", [(byte)'J', .. "null"u8]);
        Put("O-tiny.bin", [(byte)'O', .. OnnxEntry(TinyOnnx())]);
    }

    private static byte[] Random(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Rewrites an entry's uncompressed size in its local header and its central directory record.</summary>
    private static byte[] PatchSize(byte[] zip, string name, Func<uint, uint> size)
    {
        var bytes = (byte[])zip.Clone();
        var nameBytes = Encoding.UTF8.GetBytes(name);
        for (int i = 0; i + 46 <= bytes.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(bytes, i);
            if (sig == 0x04034b50 && Named(bytes, i + 30, BitConverter.ToUInt16(bytes, i + 26), nameBytes))
                BitConverter.GetBytes(size(BitConverter.ToUInt32(bytes, i + 22))).CopyTo(bytes, i + 22);
            else if (sig == 0x02014b50 && Named(bytes, i + 46, BitConverter.ToUInt16(bytes, i + 28), nameBytes))
                BitConverter.GetBytes(size(BitConverter.ToUInt32(bytes, i + 24))).CopyTo(bytes, i + 24);
        }
        return bytes;
    }

    private static bool Named(byte[] bytes, int at, int length, byte[] name) =>
        length == name.Length && at + length <= bytes.Length && bytes.AsSpan(at, length).SequenceEqual(name);

    /// <summary>Changes the first data byte of a stored entry, leaving its CRC as it was.</summary>
    private static byte[] FlipStoredByte(byte[] zip, string name)
    {
        var bytes = (byte[])zip.Clone();
        var nameBytes = Encoding.UTF8.GetBytes(name);
        for (int i = 0; i + 30 <= bytes.Length; i++)
            if (BitConverter.ToUInt32(bytes, i) == 0x04034b50 && Named(bytes, i + 30, BitConverter.ToUInt16(bytes, i + 26), nameBytes))
            {
                bytes[i + 30 + nameBytes.Length + BitConverter.ToUInt16(bytes, i + 28)] ^= 0xFF;
                break;
            }
        return bytes;
    }
}
