using System.Text.RegularExpressions;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Training;

namespace MlNetTransfer.Cli.Commands;

/// <summary>
/// The console's names for the library's options: each flag and the option property it sets, and the words of enum
/// values (<c>--mode fine-tune</c> for <c>Mode = FineTuning</c>). Parsing flags and translating the library's messages
/// (which name properties) both read this one table.
/// </summary>
internal static partial class OptionFlags
{
    /// <summary>Option property path -> flag.</summary>
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["ConvBase"] = "--base",
        ["ConvBasePreset.ModelFile"] = "--base-model <file.onnx>",
        ["Mode"] = "--mode",
        ["ModeSearch.TimeBudget"] = "--time-budget",
        ["ModeSearch.Candidates"] = "--candidates",
        ["Head"] = "--head",
        ["Seed"] = "--seed",
        ["Threads"] = "--threads",
        ["Precision"] = "--precision",
        ["Mirror"] = "--no-mirror",
        ["Refit"] = "--no-refit",
        ["Resume"] = "--resume",
        ["Data.ValidationFraction"] = "--validation-fraction",
        ["Data.FollowLinks"] = "--no-follow-links",
        ["ImageChecks.MaxPixels"] = "--max-pixels",
        ["ImageChecks.MinSide"] = "--min-size",
        ["ImageChecks.OnTruncated"] = "--on-truncated",
        ["Featurizer.BatchSize"] = "--batch-size",
        ["Featurizer.DecodeThreads"] = "--decode-threads",
        ["Featurizer.ReducedJpegDecoding"] = "--reduced-jpeg-decoding",
        ["Featurizer.Device"] = "--device",
        ["Featurizer.UseCache"] = "--no-cache",
        ["Featurizer.Shards"] = "--features",
        ["Lbfgs.L2"] = "--l2",
        ["Lbfgs.Folds"] = "--folds",
        ["FineTuning.Unfreeze"] = "--unfreeze",
        ["FineTuning.HeadEpochs"] = "--head-epochs",
        ["FineTuning.Epochs"] = "--epochs",
        ["FineTuning.LearningRate"] = "--lr",
        ["FineTuning.BlockLearningRateFactor"] = "--block-lr-factor",
        ["FineTuning.Optimizer"] = "--optimizer",
        ["FineTuning.WeightDecay"] = "--weight-decay",
        ["FineTuning.Schedule"] = "--schedule",
        ["FineTuning.AugmentedViews"] = "--augment",
        ["FineTuning.Patience"] = "--patience",
        ["FineTuning.Views"] = "--views",
        ["FineTuning.TrainBatchNorm"] = "--train-batchnorm",
        ["FineTuning.LabelSmoothing"] = "--label-smoothing",
        ["TestTimeFlip"] = "--test-time-flip",
        ["Calibrate"] = "--no-calibration",
        ["Novelty"] = "--no-novelty",
        ["UnknownFalseAlarmRate"] = "--unknown-rate",
        ["DropDuplicates"] = "--drop-duplicates",
        ["NearDuplicateThreshold"] = "--near-duplicate-threshold",
        ["Range.Start"] = "--start",
        ["Range.End"] = "--end",
        ["Range.Steps"] = "--steps",
    };

    public static readonly ValueNames<TrainingMode> Modes = new([(TrainingMode.Auto, "auto"), (TrainingMode.FeatureExtraction, "feature-extraction"), (TrainingMode.FineTuning, "fine-tune")]);

    public static readonly ValueNames<ModeCandidate> Candidates = new([(ModeCandidate.LbfgsHead, "lbfgs"), (ModeCandidate.MlpHead, "mlp"),
        (ModeCandidate.FineTuneTopBlock, "fine-tune-1"), (ModeCandidate.FineTuneTopTwoBlocks, "fine-tune-2")]);

    /// <summary>A duration as the console takes it: <c>90s</c>, <c>3m</c>, <c>1h30m</c>, <c>2h</c>; null when it is not one.</summary>
    public static TimeSpan? ParseDuration(string text)
    {
        var match = DurationPattern().Match(text.Trim());
        if (!match.Success || match.Length == 0)
            return null;
        double Part(string g) => match.Groups[g].Success ? double.Parse(match.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return TimeSpan.FromHours(Part("h")) + TimeSpan.FromMinutes(Part("m")) + TimeSpan.FromSeconds(Part("s"));
    }

    [GeneratedRegex(@"^(?:(?<h>\d+(?:\.\d+)?)h)?(?:(?<m>\d+(?:\.\d+)?)m)?(?:(?<s>\d+(?:\.\d+)?)s)?$")]
    private static partial Regex DurationPattern();

    public static readonly ValueNames<HeadKind> Heads = new([(HeadKind.LbfgsSoftmax, "lbfgs"), (HeadKind.TorchSharpSoftmax, "torch-softmax"), (HeadKind.TorchSharpMlp, "torch-mlp")],
        aliases: [("mlp", HeadKind.TorchSharpMlp)]);

    public static readonly ValueNames<OptimizerKind> Optimizers = new([(OptimizerKind.Sgd, "sgd"), (OptimizerKind.AdamW, "adamw")]);

    public static readonly ValueNames<ViewStorage> ViewStorages = new([(ViewStorage.DiskHalf, "disk-fp16"), (ViewStorage.Disk, "disk"), (ViewStorage.Memory, "memory")]);

    public static readonly ValueNames<LearningRateSchedule> Schedules = new([(LearningRateSchedule.Cosine, "cosine"), (LearningRateSchedule.OneCycle, "one-cycle")]);

    public static readonly ValueNames<ConvBasePrecision> Precisions = new([(ConvBasePrecision.Fp32, "fp32"), (ConvBasePrecision.Int8, "int8")]);

    public static readonly ValueNames<ExecutionDevice> Devices = new([(ExecutionDevice.Cpu, "cpu"), (ExecutionDevice.Cuda, "cuda")]);

    public static readonly ValueNames<TruncatedImagePolicy> Truncation = new([(TruncatedImagePolicy.Skip, "skip"), (TruncatedImagePolicy.Warn, "warn")]);

    /// <summary>The flag of an option property, or null where the console has none.</summary>
    public static string? FlagOf(string option) => Flags.GetValueOrDefault(option);

    /// <summary>
    /// A library message in the console's words: <c>Head = LbfgsSoftmax</c> becomes <c>--head lbfgs</c>,
    /// <c>FineTuning.Epochs = 20</c> becomes <c>--epochs 20</c>, a bare <c>FineTuning.LearningRate</c> becomes <c>--lr</c>.
    /// A bare one-word option (<c>Resume</c>) is translated only where it leads the message as <paramref name="option"/>
    /// (the option at fault): elsewhere such a word may be part of a file's path.
    /// </summary>
    public static string Translate(string message, string? option = null)
    {
        if (option is not null && !option.Contains('.') && FlagOf(option) is { } leading && message.StartsWith(option + " ", StringComparison.Ordinal)
            && !message.StartsWith(option + " = ", StringComparison.Ordinal))
            message = leading + message[option.Length..];
        message = Assignment().Replace(message, m =>
        {
            var option = m.Groups["option"].Value;
            var value = m.Groups["value"].Value;
            if (FlagOf(option) is not { } flag)
                return m.Value;
            return (option, value) switch
            {
                ("Featurizer.UseCache", "true") => "the cache (no --no-cache)",
                ("Refit" or "Mirror" or "Featurizer.UseCache" or "Data.FollowLinks" or "Calibrate" or "Novelty", "false") => flag,
                ("Resume" or "FineTuning.TrainBatchNorm" or "TestTimeFlip" or "DropDuplicates", "true") => flag,
                _ => $"{flag} {ValueWord(option, value)}",
            };
        });
        return DottedPath().Replace(message, m => FlagOf(m.Value) ?? m.Value);
    }

    private static string ValueWord(string option, string value) => option switch
    {
        "Mode" => Modes.WordOf(value),
        "Head" => Heads.WordOf(value),
        "FineTuning.Optimizer" => Optimizers.WordOf(value),
        "FineTuning.Schedule" => Schedules.WordOf(value),
        "Precision" => Precisions.WordOf(value),
        "Featurizer.Device" => Devices.WordOf(value),
        "ImageChecks.OnTruncated" => Truncation.WordOf(value),
        _ => value,
    };

    [GeneratedRegex(@"(?<option>\b[A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z0-9]*)*) = (?<value>[A-Za-z0-9.\-+]+)")]
    private static partial Regex Assignment();

    [GeneratedRegex(@"\b[A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z0-9]*)+\b")]
    private static partial Regex DottedPath();
}

/// <summary>The words of an enum's values on the command line, both ways.</summary>
internal sealed class ValueNames<T>(IReadOnlyList<(T Value, string Word)> names, IReadOnlyList<(string Word, T Value)>? aliases = null) where T : struct, Enum
{
    public IEnumerable<string> Words => names.Select(n => n.Word);

    public bool TryParse(string word, out T value)
    {
        foreach (var (v, w) in names)
            if (string.Equals(w, word, StringComparison.OrdinalIgnoreCase)) { value = v; return true; }
        foreach (var (w, v) in aliases ?? [])
            if (string.Equals(w, word, StringComparison.OrdinalIgnoreCase)) { value = v; return true; }
        value = default;
        return false;
    }

    public T Parse(string word) => TryParse(word, out var value) ? value : throw new ArgumentException($"'{word}' is not one of {string.Join(", ", Words)}");

    public string WordOf(T value) => names.First(n => EqualityComparer<T>.Default.Equals(n.Value, value)).Word;

    public string WordOf(string enumName) => Enum.TryParse<T>(enumName, out var value) ? WordOf(value) : enumName;
}
