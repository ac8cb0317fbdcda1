using System.Globalization;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>
/// Fits the saved model's novelty score on the pooled features of every training image (through the tuned block, when
/// one trained) and sets its threshold on their out-of-fold scores at the stated false-alarm rate; the saved graph gets
/// it as its <c>Novelty</c> output.
/// </summary>
internal static class HeadNovelty
{
    /// <summary>Fewer training images than this cannot shape a covariance: no novelty score.</summary>
    public const int MinImages = 20;

    public const int Folds = 5;

    /// <summary>Sets <paramref name="final"/>'s novelty scorer and describes it; null (and said) when the model gets none.</summary>
    public static (ModelMetadata.NoveltyInfo Info, NoveltyScorer Scorer)? Fit(FittedHead final, TrainingRun run, ViewSet train, IProgress<ProgressEvent>? progress)
    {
        if (!run.Options.Novelty)
            return null;
        if (train.Images.Count < MinImages)
        {
            progress.Note($"no novelty score: {train.Images.Count} training images, fewer than the {MinImages} it is fitted on");
            return null;
        }
        var features = final.PooledFeatures(train);
        int length = features[0].Length;
        if (length > NoveltyScorer.MaxFeatureLength)
        {
            progress.Note($"no novelty score: the pooled features have {length:N0} values, more than the {NoveltyScorer.MaxFeatureLength:N0} a covariance is fitted for (use average or max pooling)");
            return null;
        }
        var classes = train.Images.Select(i => LbfgsHeadTrainer.IndexOf(run.Dataset.Classes, i.Image.Label)).ToList();
        double rate = run.Options.UnknownFalseAlarmRate;
        var (threshold, folds, _) = NoveltyScorer.Threshold(features, classes, rate, Folds, run.Options.Seed);
        var scorer = NoveltyScorer.Fit(features, classes);
        final.Novelty = scorer;
        var info = new ModelMetadata.NoveltyInfo(Onnx.NoveltyGraph.NoveltyTensor,
            "squared Mahalanobis distance of the L2-normalised pooled features to the nearest class mean (shared Ledoit-Wolf covariance) / feature length",
            threshold, rate, features.Length, folds, scorer.Shrinkage);
        progress.Note(string.Create(CultureInfo.InvariantCulture,
            $"novelty: output column {info.Column}; unknown above {threshold:F3}, which {rate:P0} of the {features.Length} training images' {folds}-fold out-of-fold scores exceed (covariance shrinkage {scorer.Shrinkage:F2})"));
        return (info, scorer);
    }

    /// <summary>Share of <paramref name="images"/> scored above the threshold by the saved head's features.</summary>
    public static double UnknownRate(FittedHead final, NoveltyScorer scorer, double threshold, ViewSet images) =>
        images.Images.Count == 0 ? 0 : final.PooledFeatures(images).Count(f => scorer.Score(f) > threshold) / (double)images.Images.Count;
}
