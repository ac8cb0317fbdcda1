using System.ComponentModel;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

/// <summary>
/// The flags of the commands that drive <see cref="ImageClassifierTrainer"/>, in layers (each command takes the layers
/// whose options it uses). Every layer only maps its flags onto the trainer's options; what is valid is the library's
/// <see cref="ImageClassifierTrainerOptions.Validate()"/>, whose messages come back in flags (<see cref="OptionFlags"/>).
/// Defaults shown here are the library's (a test checks that the two agree).
/// </summary>
public abstract class RunSettings : ImageSettings
{
    [CommandOption("--threads <N>")]
    [Description("ONNX Runtime and TorchSharp threads. Default: all cores. Same seed, data and threads: same model.")]
    public int? Threads { get; init; }

    [CommandOption("--batch-size <N>")]
    [Description("Views (images and their augmented copies) per ONNX Runtime call.")]
    [DefaultValue(32)]
    public int BatchSize { get; init; } = 32;

    [CommandOption("--decode-threads <N>")]
    [Description("Threads that read, decode and resize images while ONNX Runtime runs. Default: all cores.")]
    public int? DecodeThreads { get; init; }

    [CommandOption("--reduced-jpeg-decoding")]
    [Description("Decode JPEGs larger than the input at a reduced DCT scale (k/8) before the resize: faster featurization, but training pixels differ from the saved model's (features within the bound docs/benchmarks.md states). Default off: bit-identical.")]
    public bool ReducedJpegDecoding { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("Where ONNX Runtime runs the conv base (or its frozen part): cpu, or cuda (the tool built with -p:OnnxRuntimeGpu=true, CUDA 13 + cuDNN 9 on the machine; otherwise it runs on the CPU and says why). TorchSharp trains on the CPU.")]
    [DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";

    [CommandOption("-s|--seed <N>")]
    [Description("Seed of the held-out split, folds, augmentation and training: same seed, data and threads give the same model.")]
    [DefaultValue(1)]
    public int Seed { get; init; } = 1;

    [CommandOption("--no-cache")]
    [Description("Do not read or write the cache of what the conv base computed (per image, by content, base, cut and view).")]
    public bool NoCache { get; init; }

    /// <summary>This layer's flags on the trainer's options.</summary>
    internal virtual ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o) => o with
    {
        Seed = Seed,
        Threads = Threads,
        ImageChecks = Validation,
        Data = o.Data with { FollowLinks = !NoFollowLinks },
        Featurizer = o.Featurizer with
        {
            BatchSize = BatchSize,
            DecodeThreads = DecodeThreads,
            ReducedJpegDecoding = ReducedJpegDecoding,
            Device = OptionFlags.Devices.Parse(Device),
            UseCache = !NoCache,
        },
    };

    /// <summary>The trainer's options for this command's flags (the library's defaults for the rest).</summary>
    internal ImageClassifierTrainerOptions Options() => Apply(new ImageClassifierTrainerOptions());

    /// <summary>While validating: a conv base that does not resolve is left to the run, which names the file.</summary>
    private protected bool Validating { get; private set; }

    /// <summary>Which entry point of the trainer the command calls (what its options are validated for).</summary>
    internal abstract TrainerTask Task { get; }

    public override ValidationResult Validate()
    {
        if (!OptionFlags.Devices.TryParse(Device, out _))
            return ValidationResult.Error($"--device must be one of {string.Join(", ", OptionFlags.Devices.Words)}");
        var words = WordErrors();
        if (words is not null)
            return ValidationResult.Error(words);
        var checks = base.Validate();
        if (!checks.Successful)
            return checks;
        try
        {
            Validating = true;
            Options().Validate(Task);
            return MoreErrors() is { } more ? ValidationResult.Error(more) : ValidationResult.Success();
        }
        catch (TrainingOptionsException e)
        {
            return ValidationResult.Error(OptionFlags.Translate(e.Message));
        }
        finally
        {
            Validating = false;
        }
    }

    /// <summary>Checks of a command's own options (through the library, like the rest); null when there are none.</summary>
    internal virtual string? MoreErrors() => null;

    /// <summary>A flag whose word is not one it takes (checked before the options are built from them).</summary>
    internal virtual string? WordErrors() => null;
}

/// <summary>Which conv base: the preset (or a path) and, for one that is not embedded, its exported ONNX file.</summary>
public abstract class BaseSettings : RunSettings
{
    [CommandOption("-b|--base <BASE>")]
    [Description("Conv base: resnet18 (embedded default), vgg16-keras, vgg16-torchvision, or a path to any .onnx with a spec JSON beside it.")]
    [DefaultValue(ConvBaseRegistry.DefaultName)]
    public string Base { get; init; } = ConvBaseRegistry.DefaultName;

    [CommandOption("--base-model <FILE>")]
    [Description("The exported ONNX file for a preset that is not embedded (vgg16-keras, vgg16-torchvision); see onnx/README.md.")]
    public string? BaseModel { get; init; }

    internal override ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o)
    {
        o = base.Apply(o);
        return o with { ConvBase = ResolveBase() ?? o.ConvBase };
    }

    private ConvBasePreset? ResolveBase()
    {
        try
        {
            return ConvBaseRegistry.Resolve(Base, BaseModel);
        }
        catch (ConvBaseException) when (Validating)
        {
            // A base that cannot be had is reported by the run, naming the file; the other options are checked now.
            return null;
        }
    }
}

/// <summary>Which conv base, how it is cut, and the views of each training image: what runs through the base.</summary>
public abstract class ViewSettings : BaseSettings
{
    [CommandOption("--precision <P>")]
    [Description("Conv base precision: fp32, or int8 (feature extraction: made from the fp32 ONNX, calibrated on up to 200 training images; the saved model carries it). bf16 is not offered: ONNX Runtime's CPU provider has no bf16 convolution.")]
    [DefaultValue("fp32")]
    public string Precision { get; init; } = "fp32";

    [CommandOption("-m|--mode <MODE>")]
    [Description("auto (train's default: tries feature extraction with the L-BFGS and MLP heads, then fine-tuning the top block and the top two, and keeps a dearer one only when it is better beyond noise on images no reported figure comes from), feature-extraction (the conv base stays frozen; a head trains on its pooled features; the default of the other commands) or fine-tune (the top block(s) train too, in TorchSharp).")]
    public string? Mode { get; init; }

    /// <summary>The mode when --mode is not given: the library's default, or <c>auto</c> for <c>train</c>.</summary>
    internal virtual string DefaultMode => "feature-extraction";

    [CommandOption("--head <HEAD>")]
    [Description("lbfgs (a softmax layer trained by ML.NET's L-BFGS; feature extraction only, its default), torch-softmax (a softmax layer trained in TorchSharp on augmented views; fine-tuning's default) or torch-mlp (mlp; Dense(256, relu) -> Dropout(0.5) -> softmax, in TorchSharp).")]
    public string? Head { get; init; }

    [CommandOption("-u|--unfreeze <BLOCK|N>")]
    [Description("fine-tune: a block name (it and all above it train, e.g. block5, stage4) or how many blocks from the top.")]
    [DefaultValue("1")]
    public string Unfreeze { get; init; } = "1";

    [CommandOption("--augment <K>")]
    [Description("TorchSharp heads and fine-tune: augmented views (random resized crop, and a random flip unless --no-mirror) per training image, besides the plain one.")]
    [DefaultValue(4)]
    public int Augment { get; init; } = 4;

    [CommandOption("--views <WHERE>")]
    [Description("fine-tune: where the frozen part's activations of every training view are kept while the block trains: disk-fp16 (a temp file of 16-bit floats; memory stays flat as the data grows), disk (32-bit floats) or memory.")]
    [DefaultValue("disk-fp16")]
    public string Views { get; init; } = "disk-fp16";

    [CommandOption("--no-mirror")]
    [Description("No left-right flips: no mirror image for the L-BFGS head, no random flips in the TorchSharp heads' crops (for data whose orientation carries meaning).")]
    public bool NoMirror { get; init; }

    internal override ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o)
    {
        o = base.Apply(o);
        return o with
        {
            Precision = OptionFlags.Precisions.Parse(Precision),
            Mode = OptionFlags.Modes.Parse(Mode ?? DefaultMode),
            Head = Head is null ? null : OptionFlags.Heads.Parse(Head),
            Mirror = !NoMirror,
            FineTuning = o.FineTuning with { Unfreeze = Unfreeze, AugmentedViews = Augment, Views = OptionFlags.ViewStorages.Parse(Views) },
        };
    }

    internal override string? WordErrors()
    {
        if (Precision == "bf16")
            return "--precision bf16 is not offered: ONNX Runtime's CPU provider has no bf16 convolution kernels; use int8 or fp32";
        if (!OptionFlags.Precisions.TryParse(Precision, out _))
            return $"--precision must be one of {string.Join(", ", OptionFlags.Precisions.Words)}";
        if (!OptionFlags.Modes.TryParse(Mode ?? DefaultMode, out _))
            return $"--mode must be one of {string.Join(", ", OptionFlags.Modes.Words)}";
        if (Head == "linear")
            return "--head linear is ambiguous: use lbfgs (ML.NET's L-BFGS, feature extraction) or torch-softmax (TorchSharp; what fine-tuning's linear head was)";
        if (Head is not null && !OptionFlags.Heads.TryParse(Head, out _))
            return $"--head must be one of {string.Join(", ", OptionFlags.Heads.Words)}";
        if (!OptionFlags.ViewStorages.TryParse(Views, out _))
            return $"--views must be one of {string.Join(", ", OptionFlags.ViewStorages.Words)}";
        return base.WordErrors();
    }
}

/// <summary>The optimizer side of the recipe: what the range test and training share.</summary>
public abstract class RecipeSettings : ViewSettings
{
    [CommandOption("--head-epochs <N>")]
    [Description("TorchSharp heads and fine-tune: epochs of the head alone on the frozen base (every view once per epoch).")]
    [DefaultValue(5)]
    public int HeadEpochs { get; init; } = 5;

    [CommandOption("--lr <X>")]
    [Description("TorchSharp heads and fine-tune: peak learning rate of the head; the unfrozen block gets lr x --block-lr-factor.")]
    [DefaultValue(2e-3)]
    public double LearningRate { get; init; } = 2e-3;

    [CommandOption("--block-lr-factor <X>")]
    [Description("fine-tune: the unfrozen block's learning rate relative to --lr (discriminative learning rates).")]
    [DefaultValue(0.5)]
    public double BlockLearningRateFactor { get; init; } = 0.5;

    [CommandOption("--optimizer <NAME>")]
    [Description("TorchSharp heads and fine-tune: sgd (momentum 0.9) or adamw.")]
    [DefaultValue("sgd")]
    public string Optimizer { get; init; } = "sgd";

    [CommandOption("--weight-decay <X>")]
    [Description("TorchSharp heads and fine-tune: weight decay. Default: the optimizer's, 1e-4 for sgd, 1e-2 for adamw.")]
    public double? WeightDecay { get; init; }

    [CommandOption("--label-smoothing <X>")]
    [Description("TorchSharp heads and fine-tune: label smoothing of the training loss (0 to below 1; 0 is none).")]
    [DefaultValue(0.0)]
    public double LabelSmoothing { get; init; }

    [CommandOption("--train-batchnorm")]
    [Description("fine-tune: also update BatchNorm statistics of the unfrozen block (default: they stay in inference mode).")]
    public bool TrainBatchNorm { get; init; }

    internal override ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o)
    {
        o = base.Apply(o);
        return o with
        {
            FineTuning = o.FineTuning with
            {
                HeadEpochs = HeadEpochs,
                LearningRate = LearningRate,
                BlockLearningRateFactor = BlockLearningRateFactor,
                Optimizer = OptionFlags.Optimizers.Parse(Optimizer),
                WeightDecay = WeightDecay,
                TrainBatchNorm = TrainBatchNorm,
                LabelSmoothing = LabelSmoothing,
            },
        };
    }

    internal override string? WordErrors() =>
        !OptionFlags.Optimizers.TryParse(Optimizer, out _) ? $"--optimizer must be one of {string.Join(", ", OptionFlags.Optimizers.Words)}" : base.WordErrors();
}

/// <summary>Options of <c>train</c> and <c>retrain</c>: the whole recipe, the L-BFGS head, how data is used, and what is written.</summary>
public abstract class TrainingSettings : RecipeSettings
{
    [CommandOption("-o|--out <FILE>")]
    [Description("Model zip to write; metrics go to <name>.metrics.json beside it.")]
    [DefaultValue("model.zip")]
    public string Out { get; init; } = "model.zip";

    [CommandOption("--force")]
    [Description("Write the model even where it is worse than the one it is compared with (retrain: the model continued; train: --compare-to).")]
    public bool Force { get; init; }

    [CommandOption("-e|--epochs <N>")]
    [Description("fine-tune: epochs of block + head (early stopping may end sooner).")]
    [DefaultValue(10)]
    public int Epochs { get; init; } = 10;

    [CommandOption("--patience <N>")]
    [Description("fine-tune: stop after N epochs without a better validation loss; the best epoch is kept.")]
    [DefaultValue(5)]
    public int Patience { get; init; } = 5;

    [CommandOption("--schedule <NAME>")]
    [Description("TorchSharp heads and fine-tune: cosine, or one-cycle (warmup, then cosine).")]
    [DefaultValue("cosine")]
    public string Schedule { get; init; } = "cosine";

    [CommandOption("--l2 <X>")]
    [Description("lbfgs head: L2 weight. Default: chosen by cross-validation on the training images.")]
    public float? L2 { get; init; }

    [CommandOption("--folds <K>")]
    [Description("lbfgs head: cross-validation folds for choosing L2.")]
    [DefaultValue(5)]
    public int Folds { get; init; } = 5;

    [CommandOption("--validation-fraction <F>")]
    [Description("Share of each class held out of the training images when the data has no validation split (to choose the epoch, or to estimate accuracy where there is no test split either); the final model is then fit on all of them.")]
    [DefaultValue(0.2)]
    public double ValidationFraction { get; init; } = 0.2;

    [CommandOption("--no-refit")]
    [Description("Keep the model fit without the held-out share (the default fits it again on every labelled image).")]
    public bool NoRefit { get; init; }

    [CommandOption("--test-time-flip")]
    [Description("The saved model predicts from each image and its mirror image (the head sees the mean of their features): flip test-time augmentation inside the zip, about twice the inference time.")]
    public bool TestTimeFlip { get; init; }

    [CommandOption("--no-calibration")]
    [Description("Save the head as trained (the default fits a temperature on held-out predictions and folds it into the head, so Score is calibrated; the predicted class does not change).")]
    public bool NoCalibration { get; init; }

    [CommandOption("--no-novelty")]
    [Description("No Novelty column in the zip (the default adds one: how unlike the training images an image is, with a threshold for answering \"unknown\").")]
    public bool NoNovelty { get; init; }

    [CommandOption("--unknown-rate <RATE>")]
    [Description("Share of images like the training ones that the stored novelty threshold calls unknown (set on out-of-fold scores of the training images).")]
    [DefaultValue(0.05)]
    public double UnknownRate { get; init; } = 0.05;

    [CommandOption("--resume")]
    [Description("TorchSharp heads and fine-tune: continue an interrupted run from its last epoch checkpoint (same data, options and threads).")]
    public bool Resume { get; init; }

    [CommandOption("--report-dir <DIR>")]
    [Description("Where the HTML report and its plots go. Default: report/ beside the model.")]
    public string? ReportDir { get; init; }

    [CommandOption("--features <FILE>")]
    [Description("Shards made by 'featurize --shard i/n' with the same --base, --mode, --unfreeze, --head and --augment (repeat the option for each): their views go into the cache first, so those images do not run through the conv base again.")]
    public string[] Features { get; init; } = [];

    internal override ImageClassifierTrainerOptions Apply(ImageClassifierTrainerOptions o)
    {
        o = base.Apply(o);
        return o with
        {
            FineTuning = o.FineTuning with { Epochs = Epochs, Patience = Patience, Schedule = OptionFlags.Schedules.Parse(Schedule) },
            Lbfgs = o.Lbfgs with { L2 = L2, Folds = Folds },
            Data = o.Data with { ValidationFraction = ValidationFraction },
            Refit = !NoRefit,
            TestTimeFlip = TestTimeFlip,
            Calibrate = !NoCalibration,
            Novelty = !NoNovelty,
            UnknownFalseAlarmRate = UnknownRate,
            Resume = Resume,
            Featurizer = o.Featurizer with { Shards = Features.Select(Path.GetFullPath).ToList() },
        };
    }

    internal override string? WordErrors() =>
        !OptionFlags.Schedules.TryParse(Schedule, out _) ? $"--schedule must be one of {string.Join(", ", OptionFlags.Schedules.Words)}" : base.WordErrors();
}
