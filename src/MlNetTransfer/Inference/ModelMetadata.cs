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
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public string Tool { get; init; } = "MlNetTransfer " + typeof(ModelMetadata).Assembly.GetName().Version?.ToString(3);
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;

    /// <summary><c>feature-extraction</c> or <c>fine-tune</c>.</summary>
    public required string Mode { get; init; }

    public required ConvBaseInfo ConvBase { get; init; }
    public required IReadOnlyList<string> Classes { get; init; }
    public required HeadInfo Head { get; init; }
    public required TrainingInfo Training { get; init; }

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

    public sealed record HeadInfo(string Kind, float L1, float L2, IReadOnlyList<Training.CrossValidationResult> CrossValidation);

    public sealed record TrainingInfo(string Data, string SplitOrigin, int Seed, bool MirrorAugmentation,
        IReadOnlyDictionary<string, int> ImagesPerSplit, int SkippedFiles, IReadOnlyDictionary<string, string> Options);

    public sealed record MetricsSummary(string Split, int Count, double MicroAccuracy, double MacroAccuracy, double LogLoss);

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ModelMetadata FromJson(string json) =>
        JsonSerializer.Deserialize<ModelMetadata>(json, Json) ?? throw new JsonException("empty metadata");
}
