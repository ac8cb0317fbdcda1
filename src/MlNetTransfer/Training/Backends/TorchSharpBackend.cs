using System.Reflection;
using MlNetTransfer.Featurization;
using MlNetTransfer.Progress;
using Onnx;

namespace MlNetTransfer.Training.Backends;

/// <summary>One epoch of training, as reported.</summary>
internal sealed record EpochRecord(string Phase, int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double LearningRate, TimeSpan Elapsed);

/// <summary>A softmax layer's weights [classes][inputs] and biases, and for an MLP head its hidden layer ([units * inputs] row-major, biases).</summary>
internal sealed record HeadWeights(float[][] OutputWeights, float[] OutputBiases, float[]? HiddenWeights = null, float[]? HiddenBiases = null);

/// <summary>
/// What the TorchSharp backend is asked to train: a head (and, when fine-tuning, the graph's part above the freeze
/// boundary) on views already computed at that boundary by the featurization pipeline.
/// </summary>
internal sealed record TorchTrainingJob
{
    /// <summary>The composed featurizer graph, whose nodes above <see cref="Boundary"/> are imported into TorchSharp; null for a head on the frozen base.</summary>
    public required ModelProto? Composed { get; init; }

    /// <summary>The tensor the views were taken at: the freeze boundary, or <c>Features</c> for a head on the frozen base.</summary>
    public required string Boundary { get; init; }

    public required int FeatureLength { get; init; }

    /// <summary>Training images: every view is a sample of the head phase; fine-tuning takes one random view per image per epoch.</summary>
    public required ViewSet Train { get; init; }

    /// <summary>Images the epoch is chosen on (plain views); empty for a refit.</summary>
    public required ViewSet Validation { get; init; }

    public required IReadOnlyList<string> Classes { get; init; }

    public required HeadKind Head { get; init; }

    /// <summary>Train the graph's part above the boundary (fine-tuning), not only the head.</summary>
    public required bool TrainSuffix { get; init; }

    public required FineTuningOptions Recipe { get; init; }

    public required int Seed { get; init; }

    public required int Threads { get; init; }

    /// <summary>Head weights to start from (continued training); the head phase is then skipped.</summary>
    public HeadWeights? WarmStart { get; init; }

    /// <summary>Keep this epoch instead of the best validation one, and stop there (a refit on all the data).</summary>
    public (string Phase, int Epoch)? KeepEpoch { get; init; }

    /// <summary>A refit: the head epoch the chosen run's fine-tuning started from (it starts from the same one).</summary>
    public int? KeepHeadEpoch { get; init; }

    /// <summary>Where the state is saved after every epoch (null: nowhere), and the run's fingerprint it must carry.</summary>
    public string? CheckpointPath { get; init; }

    public string Fingerprint { get; init; } = "";

    public bool Resume { get; init; }
}

/// <summary>A trained head (and suffix): what was kept, how it got there, and its predictions.</summary>
internal interface ITrainedTorchModel : IDisposable
{
    IReadOnlyList<EpochRecord> History { get; }

    /// <summary>The epoch whose weights were kept.</summary>
    EpochRecord? Best { get; }

    /// <summary>Stopped early by the user; the weights are the best so far.</summary>
    bool Stopped { get; }

    /// <summary>The head epoch fine-tuning started from (the best head epoch), or null.</summary>
    int? HeadEpoch { get; }

    /// <summary>The trained initializers of the suffix, by ONNX name; null when only the head trained.</summary>
    IReadOnlyDictionary<string, float[]>? TunedInitializers { get; }

    HeadWeights Head { get; }

    /// <summary>Softmax of the kept weights on the plain view of each image.</summary>
    float[][] Probabilities(ViewSet images);

    /// <summary>What the head reads before any hidden layer (the pooled features, through the tuned block) for the plain view of each image.</summary>
    float[][] Features(ViewSet images);
}

/// <summary>Trains in TorchSharp (libtorch). The core assembly knows only this contract; MlNetTransfer.TorchSharp fulfils it.</summary>
internal interface ITorchSharpBackend
{
    ITrainedTorchModel Train(TorchTrainingJob job, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken);

    /// <summary>The learning-rate range test on the job's training views (fine-tuning: after the head phase).</summary>
    LearningRateSweep FindLearningRate(TorchTrainingJob job, LearningRateRange range, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken);

    /// <summary>Trains a small CNN from random weights on the job's pixels; class probabilities of its evaluation images.</summary>
    float[][] TrainFromScratch(ScratchJob job, CancellationToken cancellationToken);
}

/// <summary>Finds the TorchSharp backend: the assembly MlNetTransfer.TorchSharp, which a project gets by referencing its package.</summary>
internal static class TrainingBackends
{
    public const string TorchSharpAssembly = "MlNetTransfer.TorchSharp";
    private const string TorchSharpType = "MlNetTransfer.TorchSharp.TorchSharpTrainingBackend";

    public static ITorchSharpBackend TorchSharp(string forWhat, string assemblyName = TorchSharpAssembly)
    {
        Assembly assembly;
        try
        {
            assembly = Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            throw new TrainingBackendMissingException(
                $"{forWhat} trains in TorchSharp, which needs the package {assemblyName} (it brings libtorch): add a reference to it to this project. Feature extraction with Head = LbfgsSoftmax needs only this package.", e);
        }
        var type = assembly.GetType(TorchSharpType, throwOnError: false)
                   ?? throw new TrainingBackendMissingException($"{assemblyName} ({assembly.GetName().Version}) has no {TorchSharpType}: its version does not match this MlNetTransfer.");
        return (ITorchSharpBackend)Activator.CreateInstance(type, nonPublic: true)!;
    }

    /// <summary>The backend, or null and why it is missing, for a run that goes on without it (what needs it is skipped and said).</summary>
    public static (ITorchSharpBackend? Backend, string? Missing) TryTorchSharp(string forWhat)
    {
        try
        {
            return (TorchSharp(forWhat), null);
        }
        catch (TrainingBackendMissingException e)
        {
            return (null, e.Message);
        }
    }
}
