namespace MlNetTransfer.Training;

/// <summary>A way of training that <see cref="TrainingMode.Auto"/> tries, from the cheapest to the dearest.</summary>
public enum ModeCandidate
{
    /// <summary>Feature extraction with the L-BFGS softmax head (<see cref="HeadKind.LbfgsSoftmax"/>).</summary>
    LbfgsHead,

    /// <summary>Feature extraction with the MLP head in TorchSharp (<see cref="HeadKind.TorchSharpMlp"/>).</summary>
    MlpHead,

    /// <summary>Fine-tuning the top block with a softmax head (<c>FineTuning.Unfreeze = "1"</c>).</summary>
    FineTuneTopBlock,

    /// <summary>Fine-tuning the top two blocks with a softmax head (<c>FineTuning.Unfreeze = "2"</c>).</summary>
    FineTuneTopTwoBlocks,
}

/// <summary>How <see cref="TrainingMode.Auto"/> searches.</summary>
public sealed record ModeSearchOptions
{
    /// <summary>Every candidate, cheapest first.</summary>
    public static readonly IReadOnlyList<ModeCandidate> AllCandidates =
        [ModeCandidate.LbfgsHead, ModeCandidate.MlpHead, ModeCandidate.FineTuneTopBlock, ModeCandidate.FineTuneTopTwoBlocks];

    /// <summary>
    /// The candidates tried, in this order (the first is the one kept unless another beats it beyond noise). Default:
    /// <see cref="AllCandidates"/>.
    /// </summary>
    public IReadOnlyList<ModeCandidate> Candidates { get; init; } = AllCandidates;

    /// <summary>
    /// Wall-clock time for the whole run, the final refit included. A candidate that would not finish within it is
    /// skipped (the run says which and why); one under way when it runs out is stopped and dropped. Default 60 minutes.
    /// </summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromMinutes(60);

    /// <inheritdoc/>
    public bool Equals(ModeSearchOptions? other) =>
        other is not null && Candidates.SequenceEqual(other.Candidates) && TimeBudget == other.TimeBudget;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Candidates.Count, TimeBudget);
}
