using System.Text.Json;
using System.Text.Json.Serialization;

namespace MlNetTransfer.Inference;

/// <summary>
/// What a model zip was made from and how, kept as an extra entry (<c>MlNetTransfer/model.json</c>) that ML.NET itself
/// ignores: the conv base, mode, classes, head, training options, metrics and creation time.
/// </summary>
public sealed record ModelMetadata
{
    public const string EntryName = "MlNetTransfer/model.json";

    /// <summary>2: head kinds name what trained them, a weight decay is no longer stored as L2, the images in the final model are counted.</summary>
    public const int CurrentFormatVersion = 2;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public string Tool { get; init; } = "MlNetTransfer " + typeof(ModelMetadata).Assembly.GetName().Version?.ToString(3);
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;

    /// <summary><c>feature-extraction</c> or <c>fine-tune</c>.</summary>
    public required string Mode { get; init; }

    public required ConvBaseInfo ConvBase { get; init; }
    public required IReadOnlyList<string> Classes { get; init; }
    public required HeadInfo Head { get; init; }
    public required TrainingInfo Training { get; init; }

    /// <summary>How Mode = Auto chose this model among its candidates; null for a fixed mode.</summary>
    public ModeSelectionInfo? ModeSelection { get; init; }

    /// <summary>Mode = Auto: the decision in one sentence, the images it was made on, the rule, and every candidate.</summary>
    /// <param name="Decision">The decision and its evidence, in one sentence.</param>
    /// <param name="ChosenOn">The images the candidates were scored on (never a reported split).</param>
    /// <param name="Images">How many.</param>
    /// <param name="Chosen">The candidate kept.</param>
    /// <param name="Rule">The rule that decided.</param>
    /// <param name="Candidates">Every candidate, in the order tried.</param>
    public sealed record ModeSelectionInfo(string Decision, string ChosenOn, int Images, string Chosen, string Rule, IReadOnlyList<CandidateRow> Candidates)
    {
        public double TimeBudgetSeconds { get; init; }

        /// <summary>Time from the first candidate to the decision.</summary>
        public double SearchSeconds { get; init; }
    }

    /// <summary>One candidate of Mode = Auto: what it was, how it did on the choosing images, and how it compared with the one kept before it.</summary>
    /// <param name="Candidate">Its name.</param>
    /// <param name="Mode"><c>feature-extraction</c> or <c>fine-tune</c>.</param>
    /// <param name="Head">Its head kind (<see cref="HeadKinds"/>).</param>
    /// <param name="Blocks">The blocks it trained (empty for feature extraction).</param>
    /// <param name="LearningRate">Its learning rates, in words (null for the L-BFGS head).</param>
    /// <param name="Status">first, better / not better than the one kept, skipped or stopped (with why).</param>
    /// <param name="Accuracy">Accuracy on the choosing images (null when it did not finish).</param>
    /// <param name="AccuracyLow">Wilson 95 % interval, low end.</param>
    /// <param name="AccuracyHigh">Wilson 95 % interval, high end.</param>
    /// <param name="LogLoss">Log-loss on the choosing images.</param>
    /// <param name="Seconds">Wall-clock time of its fit.</param>
    public sealed record CandidateRow(string Candidate, string Mode, string Head, string Blocks, string? LearningRate, string Status,
        double? Accuracy, double? AccuracyLow, double? AccuracyHigh, double? LogLoss, double Seconds)
    {
        /// <summary>What it chose itself (its L2, its epoch).</summary>
        public string? Choice { get; init; }

        /// <summary>The candidate it was compared with (the one kept at the time); null for the first.</summary>
        public string? Versus { get; init; }
        public double? AccuracyGain { get; init; }
        public double? LogLossGain { get; init; }
        public double? LogLossGainLow { get; init; }
        public double? LogLossGainHigh { get; init; }
        public double? McNemarP { get; init; }

        /// <summary>The one kept.</summary>
        public bool Chosen { get; init; }
    }

    /// <summary>Headline metrics per evaluated split.</summary>
    public IReadOnlyList<MetricsSummary> Metrics { get; init; } = [];

    public sealed record ConvBaseInfo(string Name, string Description, string Preprocessing, string Pooling, int FeatureLength, string ModelSha256)
    {
        /// <summary>The full preset (preprocessing, blocks), so continued training needs no conv-base file.</summary>
        public Backbones.ConvBaseSpecFile? Spec { get; init; }
    }

    /// <summary>How the top of the conv base was fine-tuned (null for feature extraction).</summary>
    public FineTuneInfo? FineTune { get; init; }

    /// <summary>Fine-tuning: what was unfrozen, where the graph was cut, and every epoch.</summary>
    /// <param name="Unfreeze">What was asked: a block name or count; empty for a head on the frozen base.</param>
    /// <param name="Boundary">The tensor the graph was cut at.</param>
    /// <param name="UnfrozenBlocks">The blocks that trained.</param>
    /// <param name="AugmentedViews">Augmented views cached per training image.</param>
    /// <param name="Epochs">The run that chose the epoch (with validation figures).</param>
    /// <param name="BestEpoch">The epoch kept.</param>
    /// <param name="StoppedByUser">Training was stopped early by the user.</param>
    public sealed record FineTuneInfo(string Unfreeze, string Boundary, IReadOnlyList<string> UnfrozenBlocks, int AugmentedViews,
        IReadOnlyList<EpochRow> Epochs, string? BestEpoch, bool StoppedByUser)
    {
        /// <summary>When validation was held out of train: the refit on all training images (no validation figures).</summary>
        public IReadOnlyList<EpochRow> RefitEpochs { get; init; } = [];
    }

    /// <summary>One epoch: phase (head / fine-tune), losses and accuracies (train, validation), learning rate, seconds.</summary>
    public sealed record EpochRow(string Phase, int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double LearningRate, double Seconds);

    /// <summary>The head: what trained it, and its regularization.</summary>
    /// <param name="Kind"><c>lbfgs-softmax</c>, <c>torchsharp-softmax</c> or <c>torchsharp-mlp</c> (<see cref="HeadKinds"/>).</param>
    /// <param name="L1">L1 weight of the L-BFGS head (0 otherwise).</param>
    /// <param name="L2">L2 weight of the L-BFGS head; null for the TorchSharp heads (they have <see cref="WeightDecay"/>).</param>
    /// <param name="CrossValidation">How L2 was chosen: one row per candidate; empty when it was given.</param>
    public sealed record HeadInfo(string Kind, float L1, float? L2, IReadOnlyList<Training.CrossValidationResult> CrossValidation)
    {
        /// <summary>Weight decay of the TorchSharp optimizer; null for the L-BFGS head.</summary>
        public double? WeightDecay { get; init; }
    }

    /// <summary>The data and how it was used.</summary>
    /// <param name="Data">Folder or manifest.</param>
    /// <param name="SplitOrigin">How its splits were given (<c>folders</c>, <c>manifest</c>, or none).</param>
    /// <param name="Seed">The seed.</param>
    /// <param name="MirrorAugmentation">Flipped copies trained too.</param>
    /// <param name="ImagesPerSplit">Images per split of the data (after skipped files).</param>
    /// <param name="SkippedFiles">Files left out.</param>
    /// <param name="Options">The options that shaped the model, as text.</param>
    public sealed record TrainingInfo(string Data, string SplitOrigin, int Seed, bool MirrorAugmentation,
        IReadOnlyDictionary<string, int> ImagesPerSplit, int SkippedFiles, IReadOnlyDictionary<string, string> Options)
    {
        /// <summary>Images the saved model was fit on (every labelled training image after a refit).</summary>
        public int ImagesInModel { get; init; }

        /// <summary>Training images the trainer held out to choose the epoch or estimate accuracy (0 when the data has a validation split).</summary>
        public int HeldOut { get; init; }

        /// <summary>The saved model was fit again on every labelled image after the held-out share chose its settings.</summary>
        public bool Refit { get; init; }
    }

    /// <summary>Accuracy, log-loss and calibration error of the saved model on one split.</summary>
    public sealed record MetricsSummary(string Split, int Count, double MicroAccuracy, double MacroAccuracy, double LogLoss)
    {
        /// <summary>Expected calibration error (15 bins) of the saved model's probabilities.</summary>
        public double? CalibrationError { get; init; }

        /// <summary>The same before the temperature (null when the model is not calibrated).</summary>
        public double? CalibrationErrorBefore { get; init; }

        /// <summary>Share of the split's images the novelty threshold calls unknown (null: the model has no novelty score).</summary>
        public double? UnknownRate { get; init; }
    }

    /// <summary>How the saved head's probabilities were calibrated; null when they were not.</summary>
    public CalibrationInfo? Calibration { get; init; }

    /// <summary>Temperature scaling, folded into the saved head (its weights and biases divided by <paramref name="Temperature"/>).</summary>
    /// <param name="Temperature">The temperature (above 1: the raw head was over-confident).</param>
    /// <param name="FittedOn">The held-out predictions it was fitted on, in words.</param>
    /// <param name="Images">How many images those were.</param>
    /// <param name="LogLossBefore">Their mean log-loss before the temperature.</param>
    /// <param name="LogLossAfter">And after.</param>
    public sealed record CalibrationInfo(double Temperature, string FittedOn, int Images, double LogLossBefore, double LogLossAfter)
    {
        /// <summary>The reported split the temperature was fitted on (its calibration figures are then not independent); null when none was.</summary>
        public string? FittedOnSplit { get; init; }
    }

    /// <summary>Where a continued model (retrain) came from; null for a model trained from the conv base.</summary>
    public LineageInfo? Lineage { get; init; }

    /// <summary>The comparison with the model this one was to replace (retrain, train --compare-to); null when none was made.</summary>
    public Training.ModelPromotion? Promotion { get; init; }

    /// <summary>The model a continued one was trained from.</summary>
    /// <param name="ParentFile">Its file, as given.</param>
    /// <param name="ParentSha256">SHA-256 of that file.</param>
    /// <param name="ParentCreatedUtc">When it was made.</param>
    /// <param name="ParentData">What it was trained on, and its images per split.</param>
    /// <param name="ParentImagesPerSplit">Its images per split.</param>
    /// <param name="Generation">1 for a model trained from the conv base, its parent's + 1 for a continued one.</param>
    public sealed record LineageInfo(string ParentFile, string ParentSha256, DateTimeOffset ParentCreatedUtc, string ParentData,
        IReadOnlyDictionary<string, int> ParentImagesPerSplit, int Generation);

    /// <summary>The novelty score the zip outputs beside <c>Score</c>; null when it has none.</summary>
    public NoveltyInfo? Novelty { get; init; }

    /// <summary>
    /// The zip's <c>Novelty</c> column (a one-value float vector): the squared Mahalanobis distance of the image's
    /// L2-normalised pooled features to the nearest class mean of the training images, under their shared covariance
    /// shrunk by <paramref name="Shrinkage"/> (Ledoit-Wolf), divided by the feature length. Above <paramref name="Threshold"/>
    /// the image is called unknown.
    /// </summary>
    /// <param name="Column">The zip's output column.</param>
    /// <param name="Method">The score, in words.</param>
    /// <param name="Threshold">Scores above it are unknown.</param>
    /// <param name="FalseAlarmRate">The share of the training images' out-of-fold scores above the threshold (the rate it was set at).</param>
    /// <param name="Images">Training images it was fitted on.</param>
    /// <param name="Folds">Folds of the out-of-fold scores the threshold was set on.</param>
    /// <param name="Shrinkage">Ledoit-Wolf shrinkage of the covariance (0: sample covariance, 1: identity).</param>
    public sealed record NoveltyInfo(string Column, string Method, double Threshold, double FalseAlarmRate, int Images, int Folds, double Shrinkage);

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads metadata; that of format 1 (before head kinds named their trainer) is brought to the current meaning.</summary>
    public static ModelMetadata FromJson(string json)
    {
        var metadata = JsonSerializer.Deserialize<ModelMetadata>(json, Json) ?? throw new JsonException("empty metadata");
        // What every reader relies on, checked once here: System.Text.Json lets a JSON null into a non-nullable property.
        if (NullWhereNoneMayBe(metadata, "", 0) is { } missing)
            throw new JsonException($"'{missing}' is null");
        if (metadata.Classes.Count == 0 || metadata.Classes.Any(string.IsNullOrEmpty))
            throw new JsonException("'classes' is empty or holds an empty name");
        if (metadata.FormatVersion >= 2)
            return metadata;
        // Format 1: "linear" meant L-BFGS with feature extraction and TorchSharp otherwise, and a TorchSharp head's weight
        // decay sat in L2. The TorchSharp runs are the ones with fine-tune info.
        bool torch = metadata.FineTune is not null;
        var head = metadata.Head;
        return metadata with
        {
            FormatVersion = CurrentFormatVersion,
            Head = head with
            {
                Kind = head.Kind switch
                {
                    "mlp" => HeadKinds.TorchSharpMlp,
                    "linear" when torch => HeadKinds.TorchSharpSoftmax,
                    "linear" => HeadKinds.LbfgsSoftmax,
                    var other => other,
                },
                L2 = torch ? null : head.L2,
                WeightDecay = torch ? head.L2 : null,
            },
            Training = metadata.Training with { ImagesInModel = metadata.Training.ImagesPerSplit.GetValueOrDefault("train") },
        };
    }

    private static readonly System.Reflection.NullabilityInfoContext Nullability = new();

    /// <summary>The path of the first property declared non-nullable that holds null, in this record and the ones it holds.</summary>
    private static string? NullWhereNoneMayBe(object value, string path, int depth)
    {
        if (depth > 8)
            return null;
        foreach (var property in value.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.PropertyType.IsValueType)
                continue;
            var name = path.Length == 0 ? JsonNamingPolicy.CamelCase.ConvertName(property.Name) : $"{path}.{JsonNamingPolicy.CamelCase.ConvertName(property.Name)}";
            var item = property.GetValue(value);
            if (item is null)
            {
                if (Nullability.Create(property).ReadState == System.Reflection.NullabilityState.NotNull)
                    return name;
                continue;
            }
            if (item is System.Collections.IEnumerable items and not string)
            {
                foreach (var element in items)
                    if (element is null)
                        return name + "[]";
                    else if (element.GetType().Namespace == typeof(ModelMetadata).Namespace && NullWhereNoneMayBe(element, name + "[]", depth + 1) is { } inner)
                        return inner;
                continue;
            }
            if (property.PropertyType.Namespace?.StartsWith("MlNetTransfer", StringComparison.Ordinal) == true && NullWhereNoneMayBe(item, name, depth + 1) is { } nested)
                return nested;
        }
        return null;
    }

    /// <summary>The head kind names of <see cref="HeadInfo.Kind"/>.</summary>
    public static class HeadKinds
    {
        public const string LbfgsSoftmax = "lbfgs-softmax";
        public const string TorchSharpSoftmax = "torchsharp-softmax";
        public const string TorchSharpMlp = "torchsharp-mlp";

        public static string Of(global::MlNetTransfer.Training.HeadKind kind) => kind switch
        {
            global::MlNetTransfer.Training.HeadKind.LbfgsSoftmax => LbfgsSoftmax,
            global::MlNetTransfer.Training.HeadKind.TorchSharpSoftmax => TorchSharpSoftmax,
            _ => TorchSharpMlp,
        };

        public static global::MlNetTransfer.Training.HeadKind? Parse(string kind) => kind switch
        {
            LbfgsSoftmax => global::MlNetTransfer.Training.HeadKind.LbfgsSoftmax,
            TorchSharpSoftmax => global::MlNetTransfer.Training.HeadKind.TorchSharpSoftmax,
            TorchSharpMlp => global::MlNetTransfer.Training.HeadKind.TorchSharpMlp,
            _ => null,
        };
    }
}
