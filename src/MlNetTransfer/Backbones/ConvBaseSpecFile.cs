using System.Text.Json;
using System.Text.Json.Serialization;

namespace MlNetTransfer.Backbones;

/// <summary>
/// The small JSON that sits beside a user's ONNX conv base (<c>model.onnx.json</c>, format in onnx/README.md).
/// Every field is optional: what it states overrides the preset it is applied to.
/// </summary>
public sealed class ConvBaseSpecFile
{
    public string? Name { get; set; }
    public string? Input { get; set; }
    public string? Output { get; set; }
    public string? Layout { get; set; }
    public int? Width { get; set; }
    public int? Height { get; set; }
    public string? ChannelOrder { get; set; }
    public float? Scale { get; set; }
    public float[]? Mean { get; set; }
    public float[]? Std { get; set; }
    public string? Pooling { get; set; }
    public List<BlockEntry>? Blocks { get; set; }
    public bool? BlocksEndAtMaxPools { get; set; }

    public sealed class BlockEntry
    {
        public string Name { get; set; } = "";
        public string Output { get; set; } = "";
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary><c>model.onnx</c> -> <c>model.onnx.json</c>.</summary>
    public static string PathBeside(string onnxPath) => onnxPath + ".json";

    public static ConvBaseSpecFile Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<ConvBaseSpecFile>(File.ReadAllText(path), JsonOptions)
                   ?? throw new ConvBaseException($"{path}: empty preprocessing spec.");
        }
        catch (JsonException e)
        {
            throw new ConvBaseException($"{path}: not a valid preprocessing spec ({e.Message}).", e);
        }
    }

    public void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));

    /// <summary>The preset with this file's fields laid over it.</summary>
    public ConvBasePreset ApplyTo(ConvBasePreset preset)
    {
        var source = preset.ModelFile is null ? "spec" : PathBeside(preset.ModelFile);
        var p = preset.Preprocessing;
        var pre = p with
        {
            Width = Width ?? p.Width,
            Height = Height ?? p.Height,
            Layout = Layout is null ? p.Layout : ParseEnum<TensorLayout>(Layout, "layout", source),
            ChannelOrder = ChannelOrder is null ? p.ChannelOrder : ParseEnum<Backbones.ChannelOrder>(ChannelOrder, "channelOrder", source),
            Scale = Scale ?? p.Scale,
            Mean = Mean ?? p.Mean,
            Std = Std ?? p.Std,
            // A spec that states its own mean replaces a preset's mean image.
            MeanImage = Mean is null ? p.MeanImage : null,
        };
        pre.Validate(source);
        return preset with
        {
            Name = Name ?? preset.Name,
            InputName = Input ?? preset.InputName,
            OutputName = Output ?? preset.OutputName,
            Preprocessing = pre,
            Pooling = Pooling is null ? preset.Pooling : ParsePooling(Pooling, source),
            Blocks = Blocks is null ? preset.Blocks : Blocks.Select(b => new NamedBlock(b.Name, b.Output)).ToList(),
            BlocksEndAtMaxPools = Blocks is null ? BlocksEndAtMaxPools ?? preset.BlocksEndAtMaxPools : false,
        };
    }

    /// <summary>The spec that reproduces a preset (for writing next to an exported file).</summary>
    public static ConvBaseSpecFile From(ConvBasePreset preset) => new()
    {
        Name = preset.Name,
        Input = preset.InputName,
        Output = preset.OutputName,
        Layout = preset.Preprocessing.Layout.ToString(),
        Width = preset.Preprocessing.Width,
        Height = preset.Preprocessing.Height,
        ChannelOrder = preset.Preprocessing.ChannelOrder.ToString(),
        Scale = preset.Preprocessing.Scale,
        Mean = preset.Preprocessing.Mean,
        Std = preset.Preprocessing.Std,
        Pooling = preset.Pooling switch { FeaturePooling.Average => "avg", FeaturePooling.Max => "max", _ => "flatten" },
        Blocks = preset.Blocks.Count == 0 ? null : preset.Blocks.Select(b => new BlockEntry { Name = b.Name, Output = b.Output }).ToList(),
        BlocksEndAtMaxPools = preset.BlocksEndAtMaxPools ? true : null,
    };

    private static T ParseEnum<T>(string value, string field, string source) where T : struct, Enum =>
        Enum.TryParse<T>(value, ignoreCase: true, out var parsed)
            ? parsed
            : throw new ConvBaseException($"{source}: {field} '{value}' is not one of {string.Join(", ", Enum.GetNames<T>())}.");

    private static FeaturePooling ParsePooling(string value, string source) => value.ToLowerInvariant() switch
    {
        "avg" or "average" => FeaturePooling.Average,
        "max" => FeaturePooling.Max,
        "flatten" or "none" => FeaturePooling.Flatten,
        _ => throw new ConvBaseException($"{source}: pooling '{value}' is not one of avg, max, flatten."),
    };
}
