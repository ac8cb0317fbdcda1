using System.Diagnostics;
using System.Globalization;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;

namespace MlNetTransfer.Training;

/// <summary>
/// <see cref="TrainingMode.Auto"/>: fits the candidates, cheapest first, on the same images; scores each on images no
/// reported figure is taken from; keeps a dearer one only when it is better beyond the noise of a paired comparison
/// (<see cref="Rule"/>); completes the one kept as its fixed mode would (refit on every training image), and records
/// the table and the decision in the model's metadata.
/// </summary>
internal sealed class ModeSearch(ImageClassifierTrainer trainer, ImageClassifierTrainerOptions options, ITorchSharpBackend? backend, string? backendMissing)
{
    /// <summary>The decision rule, as the metadata and the report state it.</summary>
    public const string Rule =
        "cheapest first; a dearer candidate replaces the one kept when, on the same choosing images, it gets more of them right beyond noise " +
        "(McNemar's exact test on the images only one of the two gets right, p < 0.05) and its log-loss is not worse beyond noise (the 95 % " +
        "paired-bootstrap interval of its log-loss gain reaches above 0). Accuracy decides because a fine-tuned model's probabilities are often " +
        "over-confident, which costs it log-loss while it classifies better; log-loss only vetoes a model whose probabilities are clearly worse.";

    /// <summary>Measured ratio of fine-tuning the top two blocks to the top block alone (docs/fine-tuning.md), used to skip it early when it cannot fit.</summary>
    private const double TopTwoOverTopOne = 1.6;

    public TrainedImageClassifier Run(ImageDataset dataset, BaseSource source, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var budget = options.ModeSearch.TimeBudget;
        var (searched, shape, chosenOn) = Plan(dataset);
        bool moved = !ReferenceEquals(searched, dataset);
        progress.Note($"mode auto: candidates {string.Join("; ", options.ModeSearch.Candidates.Select(Words))}, chosen on {chosenOn}; time budget {Format(budget)}");

        var rows = new List<ModelMetadata.CandidateRow>();
        FirstFit? kept = null;
        ClassificationReport? keptReport = null;
        ModeCandidate keptCandidate = default;
        (ModeCandidate Over, PairedComparison Comparison)? evidence = null;
        (ModeCandidate Candidate, PairedComparison Comparison)? closest = null;
        TimeSpan? topOne = null;
        try
        {
            foreach (var candidate in options.ModeSearch.Candidates)
            {
                var started = clock.Elapsed;
                if (candidate != ModeCandidate.LbfgsHead && backend is null)
                {
                    rows.Add(Row(candidate, $"skipped: {backendMissing}", null, null, TimeSpan.Zero));
                    continue;
                }
                // What is left, less what finishing the one kept needs (its refit on every image).
                var reserve = kept is null ? TimeSpan.Zero : Completion(kept) * 1.25 + TimeSpan.FromSeconds(2);
                var left = budget - clock.Elapsed - reserve;
                if (candidate == ModeCandidate.FineTuneTopTwoBlocks && topOne is { } one && one * TopTwoOverTopOne > left)
                {
                    rows.Add(Row(candidate, FormattableString.Invariant($"skipped for time: about {Format(one * TopTwoOverTopOne)} needed, {Format(left)} left"), null, null, TimeSpan.Zero));
                    continue;
                }
                if (left <= TimeSpan.Zero)
                {
                    rows.Add(Row(candidate, $"skipped for time: the budget ({Format(budget)}) is spent", null, null, TimeSpan.Zero));
                    continue;
                }
                progress.Note($"mode auto: candidate {Words(candidate)}");
                FirstFit? fit = null;
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    deadline.CancelAfter(left);
                    try
                    {
                        var candidateOptions = options.ForCandidate(candidate);
                        fit = trainer.FitFirst(searched, source, candidateOptions, candidateOptions.EffectiveHead, backend, warm: null, shape, progress, deadline.Token);
                        if (fit.First.Stopped)
                        {
                            fit.Dispose();
                            fit = null;
                        }
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                    }
                    // Stopped (by the deadline, or by the user: then the run ends here) before its first fit finished.
                    cancellationToken.ThrowIfCancellationRequested();
                    if (fit is null)
                    {
                        rows.Add(Row(candidate, $"stopped by the time budget after {Format(clock.Elapsed - started)}", null, null, clock.Elapsed - started));
                        continue;
                    }
                }
                var took = clock.Elapsed - started;
                if (candidate == ModeCandidate.FineTuneTopBlock)
                    topOne = took;
                var report = fit.ChoiceReport(chosenOn)!;
                if (kept is null)
                {
                    (kept, keptReport, keptCandidate) = (fit, report, candidate);
                    rows.Add(Row(candidate, "baseline (the cheapest that finished)", report, fit, took));
                    continue;
                }
                var comparison = PairedComparison.Of(keptReport!, report, seed: options.Seed);
                bool better = IsBetter(comparison);
                rows.Add(Row(candidate, better ? $"better than {Words(keptCandidate)}" : $"not better than {Words(keptCandidate)} beyond noise", report, fit, took) with
                {
                    Versus = Words(keptCandidate),
                    AccuracyGain = comparison.AccuracyGain,
                    LogLossGain = comparison.LogLossGain,
                    LogLossGainLow = comparison.LogLossGainInterval.Low,
                    LogLossGainHigh = comparison.LogLossGainInterval.High,
                    McNemarP = comparison.McNemarP,
                });
                if (better)
                {
                    kept.Dispose();
                    evidence = (keptCandidate, comparison);
                    (kept, keptReport, keptCandidate) = (fit, report, candidate);
                    closest = null;
                }
                else
                {
                    fit.Dispose();
                    // Closest to being kept: the largest gain in accuracy (a low p for a candidate that is worse is no near miss), then the lower p.
                    if (closest is null || comparison.AccuracyGain > closest.Value.Comparison.AccuracyGain
                        || (comparison.AccuracyGain == closest.Value.Comparison.AccuracyGain && comparison.McNemarP < closest.Value.Comparison.McNemarP))
                        closest = (candidate, comparison);
                }
            }
            if (kept is null)
                throw new TrainingTimeBudgetException($"Mode = Auto: no candidate finished within the time budget ({Format(budget)}): give a larger ModeSearch.TimeBudget, or a fixed mode.");

            var decision = Decision(keptCandidate, keptReport!, evidence, closest, rows, chosenOn);
            progress.Note($"mode auto: {decision}");
            rows = rows.Select(r => r.Candidate == Words(keptCandidate) ? r with { Chosen = true } : r).ToList();
            var winner = kept;
            kept = null;
            using (winner)
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                // The refit of the one kept runs within what is left; stopped there, the fit without the held-out share is saved (and said).
                deadline.CancelAfter(Max(budget - clock.Elapsed, TimeSpan.FromMilliseconds(1)));
                return trainer.Complete(winner, previous: null, progress, deadline.Token, m => m with
                {
                    // The user's validation split ran as a reported-only split: it is still their validation split.
                    Training = moved ? m.Training with { ImagesPerSplit = new Dictionary<string, int>
                        { ["train"] = m.Training.ImagesPerSplit["train"], ["validation"] = m.Training.ImagesPerSplit["test"], ["test"] = 0 } } : m.Training,
                    ModeSelection = new ModelMetadata.ModeSelectionInfo(decision, chosenOn, keptReport!.Count, Words(keptCandidate), Rule, rows)
                    {
                        TimeBudgetSeconds = budget.TotalSeconds,
                        SearchSeconds = clock.Elapsed.TotalSeconds,
                    },
                });
            }
        }
        finally
        {
            kept?.Dispose();
        }
    }

    /// <summary>
    /// Which images choose, and which are only reported. With a validation and a test split, the validation split chooses
    /// and the test split is reported. With a validation split alone, that split is the reported one, so a share of the
    /// training images chooses (the validation split is run as a reported-only split under its own name). Without one, a
    /// share of the training images chooses.
    /// </summary>
    private (ImageDataset Searched, CandidateShape Shape, string ChosenOn) Plan(ImageDataset dataset)
    {
        const string chose = "it chose the mode";
        if (dataset.Validation.Count > 0 && dataset.Test.Count > 0)
            return (dataset, new CandidateShape(false, true, "test", chose) { TestFirst = true }, "validation images");
        var heldWords = FormattableString.Invariant($"held-out training images ({options.Data.ValidationFraction:P0} of each class)");
        if (dataset.Validation.Count > 0)
            return (new ImageDataset(dataset.Source, dataset.SplitOrigin, dataset.Train, [], dataset.Validation, dataset.Skipped),
                new CandidateShape(true, true, "validation", chose, "held-out"), heldWords);
        return (dataset, new CandidateShape(true, true, "test", chose, "held-out"), heldWords);
    }

    /// <summary>Better beyond noise: McNemar's exact p below 0.05 in its favour, and its log-loss not worse beyond noise.</summary>
    internal static bool IsBetter(PairedComparison comparison) => comparison.SecondIsBetter(0.05) && comparison.LogLossGainInterval.High > 0;

    /// <summary>What finishing a kept candidate would take: its refit on every training image (its fit, scaled by the images), or nothing.</summary>
    private static TimeSpan Completion(FirstFit fit) =>
        !fit.Split.Refit ? TimeSpan.Zero : fit.FitTime * ((double)fit.Train.Images.Count / Math.Max(1, fit.FitCount));

    private static string Decision(ModeCandidate kept, ClassificationReport report, (ModeCandidate Over, PairedComparison Comparison)? evidence,
        (ModeCandidate Candidate, PairedComparison Comparison)? closest, IReadOnlyList<ModelMetadata.CandidateRow> rows, string chosenOn)
    {
        var n = report.Count;
        string sentence;
        if (evidence is { } e)
            sentence = FormattableString.Invariant(
                $"{Verb(kept)}: {Points(e.Comparison.AccuracyGain)} over {Words(e.Over)} on {n} {chosenOn} ({e.Comparison.OnlySecondRight} images only it gets right, {e.Comparison.OnlyFirstRight} only the other; McNemar p = {e.Comparison.McNemarP:G2}); log-loss {report.LogLoss:F3}, gain {e.Comparison.LogLossGain:F3} (95 % interval {e.Comparison.LogLossGainInterval.Low:F3} to {e.Comparison.LogLossGainInterval.High:F3})");
        else if (closest is { } c)
            sentence = FormattableString.Invariant(
                $"kept {Words(kept)}: no dearer candidate was better beyond noise on {n} {chosenOn} (closest: {Words(c.Candidate)}, {Points(c.Comparison.AccuracyGain)}, McNemar p = {c.Comparison.McNemarP:G2}, log-loss gain 95 % interval {c.Comparison.LogLossGainInterval.Low:F3} to {c.Comparison.LogLossGainInterval.High:F3})");
        else
            sentence = $"{Words(kept)}: the only candidate that finished";
        var skipped = rows.Where(r => r.Status.StartsWith("skipped", StringComparison.Ordinal) || r.Status.StartsWith("stopped", StringComparison.Ordinal)).Select(r => r.Candidate).ToList();
        if (skipped.Count > 0)
            sentence += $"; not compared: {string.Join(", ", skipped)}";
        return sentence;
    }

    private static string Points(double gain) => FormattableString.Invariant($"{(gain >= 0 ? "+" : "")}{gain * 100:F1} points");

    private static string Verb(ModeCandidate c) => c switch
    {
        ModeCandidate.LbfgsHead => "kept the L-BFGS head on the frozen base",
        ModeCandidate.MlpHead => "chose the MLP head on the frozen base",
        ModeCandidate.FineTuneTopBlock => "fine-tuned the top block",
        _ => "fine-tuned the top two blocks",
    };

    /// <summary>A candidate in words, as the table names it.</summary>
    public static string Words(ModeCandidate c) => c switch
    {
        ModeCandidate.LbfgsHead => "frozen base + L-BFGS head",
        ModeCandidate.MlpHead => "frozen base + MLP head",
        ModeCandidate.FineTuneTopBlock => "fine-tune top block",
        _ => "fine-tune top two blocks",
    };

    private ModelMetadata.CandidateRow Row(ModeCandidate candidate, string status, ClassificationReport? report, FirstFit? fit, TimeSpan took)
    {
        var o = options.ForCandidate(candidate);
        var blocks = fit?.Run.Freeze?.Unfrozen.Select(b => b.Name).ToList();
        string? learningRate = candidate switch
        {
            ModeCandidate.LbfgsHead => null,
            ModeCandidate.MlpHead => o.FineTuning.LearningRate.ToString("G3", CultureInfo.InvariantCulture),
            _ => FormattableString.Invariant($"{o.FineTuning.LearningRate:G3} head, {o.FineTuning.LearningRate * o.FineTuning.BlockLearningRateFactor:G3} block"),
        };
        var (low, high) = report?.AccuracyInterval ?? (0.0, 0.0);
        return new ModelMetadata.CandidateRow(Words(candidate), o.Mode == TrainingMode.FineTuning ? "fine-tune" : "feature-extraction",
            ModelMetadata.HeadKinds.Of(o.EffectiveHead), blocks is null ? (o.Mode == TrainingMode.FineTuning ? o.FineTuning.Unfreeze : "") : string.Join(", ", blocks),
            learningRate, status, report?.MicroAccuracy, report is null ? null : low, report is null ? null : high, report?.LogLoss, took.TotalSeconds)
        {
            Choice = fit?.First.Choice,
        };
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    internal static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? FormattableString.Invariant($"{(int)t.TotalHours}h{t.Minutes:00}m") : t.TotalMinutes >= 1 ? FormattableString.Invariant($"{(int)t.TotalMinutes}m{t.Seconds:00}s") : FormattableString.Invariant($"{t.TotalSeconds:F0}s");
}
