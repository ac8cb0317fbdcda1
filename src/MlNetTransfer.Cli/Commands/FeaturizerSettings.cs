using System.ComponentModel;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

/// <summary>Options of the commands that run the conv base over images (train, retrain, lr-find, featurize).</summary>
public class FeaturizerSettings : ImageSettings
{
    [CommandOption("-b|--base <BASE>")]
    [Description("Conv base: resnet18 (embedded default), vgg16-keras, vgg16-torchvision, or a path to any .onnx with a spec JSON beside it.")]
    [DefaultValue(ConvBaseRegistry.DefaultName)]
    public string Base { get; init; } = ConvBaseRegistry.DefaultName;

    [CommandOption("--base-model <FILE>")]
    [Description("The exported ONNX file for a preset that is not embedded (vgg16-keras, vgg16-torchvision); see onnx/README.md.")]
    public string? BaseModel { get; init; }

    [CommandOption("--threads <N>")]
    [Description("ONNX Runtime threads. Default: all cores.")]
    public int? Threads { get; init; }

    [CommandOption("--batch-size <N>")]
    [Description("Images per ONNX Runtime call while featurizing.")]
    [DefaultValue(16)]
    public int BatchSize { get; init; } = 16;

    [CommandOption("-s|--seed <N>")]
    [Description("Seed of the data split, cross-validation folds and trainer: same seed, data and threads give the same model.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--validation-fraction <F>")]
    [Description("Share of each class held out for validation when the data has no split folders.")]
    [DefaultValue(0.2)]
    public double ValidationFraction { get; init; } = 0.2;

    [CommandOption("--no-mirror")]
    [Description("Do not add (train) or compute (featurize) left-right mirrored copies of the training images.")]
    public bool NoMirror { get; init; }

    [CommandOption("--decode-threads <N>")]
    [Description("Threads that read, decode and resize images while ONNX Runtime runs. Default: all cores.")]
    public int? DecodeThreads { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("cpu, or cuda: ONNX Runtime's CUDA provider, with the tool built with -p:OnnxRuntimeGpu=true and CUDA 13 + cuDNN 9 on the machine; otherwise it runs on the CPU and says why.")]
    [DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";

    [CommandOption("--precision <P>")]
    [Description("Conv base precision: fp32, or int8 (feature extraction: made from the fp32 ONNX, calibrated on up to 200 training images; the saved model carries it). bf16 is not offered: ONNX Runtime's CPU provider has no bf16 convolution.")]
    [DefaultValue("fp32")]
    public string Precision { get; init; } = "fp32";

    public ConvBasePrecision ConvBasePrecision => Precision == "int8" ? ConvBasePrecision.Int8 : ConvBasePrecision.Fp32;

    [CommandOption("--no-cache")]
    [Description("Do not read or write the feature cache (vectors on disk by image content, base and preprocessing).")]
    public bool NoCache { get; init; }

    /// <summary>How the data is split, as train, featurize, retrain and lr-find all read it.</summary>
    public DatasetOptions DatasetOptions() => new() { Seed = Seed, ValidationFraction = ValidationFraction };

    public FeaturizerOptions FeaturizerOptions() => new()
    {
        BatchSize = BatchSize,
        Threads = Threads,
        DecodeThreads = DecodeThreads,
        Device = Device == "cuda" ? ExecutionDevice.Cuda : ExecutionDevice.Cpu,
        UseFeatureCache = !NoCache,
        Validation = Validation,
    };

    public override ValidationResult Validate()
    {
        if (BatchSize < 1) return ValidationResult.Error("--batch-size must be at least 1");
        if (ValidationFraction is <= 0 or >= 1) return ValidationResult.Error("--validation-fraction must be between 0 and 1");
        if (Threads is < 1) return ValidationResult.Error("--threads must be at least 1");
        if (DecodeThreads is < 1) return ValidationResult.Error("--decode-threads must be at least 1");
        if (Device is not ("cpu" or "cuda")) return ValidationResult.Error("--device must be cpu or cuda");
        if (Precision == "bf16") return ValidationResult.Error("--precision bf16 is not offered: ONNX Runtime's CPU provider has no bf16 convolution kernels (and this CPU no bf16 instructions); use int8 or fp32");
        if (Precision is not ("fp32" or "int8")) return ValidationResult.Error("--precision must be fp32 or int8");
        return base.Validate();
    }
}
