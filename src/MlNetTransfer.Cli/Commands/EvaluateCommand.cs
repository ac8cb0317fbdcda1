using System.ComponentModel;
using System.Diagnostics;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using MlNetTransfer.Progress;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class EvaluateSettings : ImageSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<data>")]
    [Description("Labelled images: a class-per-folder tree or a CSV/TSV manifest, as for train.")]
    public string Data { get; init; } = "";

    [CommandOption("--split <SPLIT>")]
    [Description("auto (validation, else test, else every image), train, validation, test, or all.")]
    [DefaultValue("auto")]
    public string Split { get; init; } = "auto";

    [CommandOption("--json")]
    [Description("Write the metrics as JSON to standard output (with every image's prediction).")]
    public bool Json { get; init; }

    [CommandOption("--against <MODEL>")]
    [Description("A second model zip, evaluated on the same images and compared with the first, image by image: the accuracy and log-loss margins with paired bootstrap intervals, and McNemar's exact test.")]
    public string? Against { get; init; }

    public override ValidationResult Validate() =>
        Split.ToLowerInvariant() is "auto" or "train" or "validation" or "val" or "test" or "all"
            ? base.Validate()
            : ValidationResult.Error("--split must be auto, train, validation, test or all");
}

/// <summary><c>evaluate</c>: metrics of a saved model on labelled images, predicted through the zip itself.</summary>
public sealed class EvaluateCommand : Command<EvaluateSettings>
{
    public override int Execute(CommandContext context, EvaluateSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var dataset = ImageDatasetLoader.Load(settings.Data, settings.DataOptions, requireTrainable: false);
        var (name, images) = Select(dataset, settings.Split.ToLowerInvariant());
        var skipped = dataset.Skipped.ToList();
        var progress = new ConsoleProgress(console, settings.Quiet || settings.Json);
        var (classes, results, temperature, unknown) = Predict(settings.Model, settings, images, name, skipped, progress, cancellationToken);
        if (results.Count == 0)
            throw new DatasetException($"{dataset.Source}: none of the {images.Count} images could be evaluated.");

        if (settings.Against is null)
        {
            var report = ClassificationReport.Create(name, classes, results);
            // A calibrated zip's probabilities are softmax(z / T): softmax(T log p) gives them back as the head trained.
            // Every image here is of a known class: those the novelty threshold calls unknown are false alarms.
            if (unknown is { } u)
                report = report with { UnknownRate = u / (double)results.Count };
            if (temperature is { } t)
                report = report with { Uncalibrated = ClassificationReport.Create(name, classes, results.Select(r => (r.Path, r.Label, TemperatureScaling.Apply(r.Scores, 1 / t))).ToList()) };
            if (settings.Json)
            {
                Console.Out.WriteLine(report.ToJson());
                return 0;
            }
            if (!settings.Quiet)
                ReportRenderer.Skipped(console, skipped, settings.Verbose);
            ReportRenderer.Metrics(console, [report]);
            if (report.UnknownRate is { } rate)
                console.MarkupLine(SafeMarkup.Escape(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"Novelty: {unknown} of the {results.Count} images ({rate:P1}) score above the model's threshold and would be answered \"unknown\" (all are of known classes: false alarms).")));
            return 0;
        }

        // Both models on the images both could read: a comparison is of the same images or it is nothing.
        var (otherClasses, otherResults, _, _) = Predict(settings.Against, settings, images, name, skipped, progress, cancellationToken);
        if (!otherClasses.SequenceEqual(classes))
            throw new DatasetException($"{settings.Against}: its classes ({string.Join(", ", otherClasses)}) are not those of {settings.Model} ({string.Join(", ", classes)}): the two cannot be compared.");
        var common = results.Select(r => r.Path).Intersect(otherResults.Select(r => r.Path), StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        var first = ClassificationReport.Create(name, classes, results.Where(r => common.Contains(r.Path)).ToList());
        var second = ClassificationReport.Create(name, classes, otherResults.Where(r => common.Contains(r.Path)).ToList());
        var comparison = PairedComparison.Of(first, second);
        if (settings.Json)
        {
            Console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                model = settings.Model,
                against = settings.Against,
                split = name,
                images = comparison.Images,
                accuracy = first.MicroAccuracy,
                againstAccuracy = second.MicroAccuracy,
                onlyModelRight = comparison.OnlyFirstRight,
                onlyAgainstRight = comparison.OnlySecondRight,
                accuracyGain = comparison.AccuracyGain,
                accuracyGainInterval = new[] { comparison.AccuracyGainInterval.Low, comparison.AccuracyGainInterval.High },
                mcNemarP = comparison.McNemarP,
                logLossGain = comparison.LogLossGain,
                logLossGainInterval = new[] { comparison.LogLossGainInterval.Low, comparison.LogLossGainInterval.High },
            }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        if (!settings.Quiet)
            ReportRenderer.Skipped(console, skipped, settings.Verbose);
        ReportRenderer.Metrics(console, [
            ClassificationReport.Create($"{name}: {Path.GetFileName(settings.Model)}", classes, results.Where(r => common.Contains(r.Path)).ToList()),
            ClassificationReport.Create($"{name}: {Path.GetFileName(settings.Against)}", classes, otherResults.Where(r => common.Contains(r.Path)).ToList())]);
        console.MarkupLine(SafeMarkup.Escape(Describe(comparison, Path.GetFileName(settings.Model), Path.GetFileName(settings.Against), name)));
        return 0;
    }

    /// <summary>One sentence: the margin of the second model, its interval, and whether it is beyond the noise.</summary>
    internal static string Describe(PairedComparison c, string first, string second, string split)
    {
        string P(double v) => (100 * v).ToString("+0.0;-0.0;0.0", System.Globalization.CultureInfo.InvariantCulture);
        string verdict = c.SecondIsBetter() ? $"{second} is more accurate beyond the noise"
            : c.OnlyFirstRight > c.OnlySecondRight && c.McNemarP < 0.05 ? $"{first} is more accurate beyond the noise"
            : "neither is more accurate beyond the noise";
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{second} vs {first} on {c.Images} {split} images: accuracy {P(c.AccuracyGain)} points (95 % paired bootstrap {P(c.AccuracyGainInterval.Low)} to {P(c.AccuracyGainInterval.High)}); " +
            $"{c.OnlySecondRight} images only {second} gets right, {c.OnlyFirstRight} only {first}, McNemar exact p = {c.McNemarP:0.####}; " +
            $"log-loss {-c.LogLossGain:+0.0000;-0.0000;0.0000} ({-c.LogLossGainInterval.High:+0.0000;-0.0000;0.0000} to {-c.LogLossGainInterval.Low:+0.0000;-0.0000;0.0000}): {verdict}.");
    }

    /// <summary>A model's class probabilities for each image it can read; the others join <paramref name="skipped"/> once.</summary>
    private static (IReadOnlyList<string> Classes, List<(string Path, string Label, float[] Scores)> Results, double? Temperature, int? Unknown) Predict(string model, EvaluateSettings settings,
        IReadOnlyList<LabeledImage> images, string name, List<SkippedFile> skipped, ConsoleProgress progress, CancellationToken cancellationToken)
    {
        using var classifier = ImageClassifier.Load(model, validation: settings.Validation);
        var known = classifier.Classes.ToHashSet(StringComparer.Ordinal);
        var listed = skipped.Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        var results = new List<(string, string, float[])>();
        int? unknown = classifier.UnknownThreshold is null ? null : 0;
        progress.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            progress.Report(new StageStarted("evaluate", $"Predicting {images.Count} images ({name}) with {Path.GetFileName(model)}", images.Count));
            int done = 0;
            foreach (var image in images)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!known.Contains(image.Label))
                {
                    if (listed.Add(image.Path))
                        skipped.Add(new SkippedFile(image.Path, $"class '{image.Label}' is not one the model knows"));
                }
                else
                {
                    try
                    {
                        var p = classifier.Predict(image.Path);
                        var scores = classifier.Classes.Select(c => p.Scores.First(s => s.Label == c).Score).ToArray();
                        results.Add((image.Path, image.Label, scores));
                        if (p.IsUnknown)
                            unknown++;
                    }
                    catch (ImageReadException e)
                    {
                        if (listed.Add(image.Path))
                            skipped.Add(new SkippedFile(image.Path, e.Reason));
                    }
                }
                progress.Report(new StageAdvanced("evaluate", ++done, images.Count));
            }
            progress.Report(new StageFinished("evaluate", results.Count, clock.Elapsed));
            return 0;
        });
        return (classifier.Classes.ToList(), results, classifier.Metadata?.Calibration?.Temperature, unknown);
    }

    private static (string Name, IReadOnlyList<LabeledImage> Images) Select(ImageDataset dataset, string split) => split switch
    {
        "train" => ("train", dataset.Train),
        "validation" or "val" => ("validation", dataset.Validation),
        "test" => ("test", dataset.Test),
        "all" => ("all", dataset.All.ToList()),
        // A folder without split folders is all evaluation data; with them, the held-out split.
        _ when !dataset.SplitsGiven => ("all", dataset.All.ToList()),
        _ when dataset.Validation.Count > 0 => ("validation", dataset.Validation),
        _ when dataset.Test.Count > 0 => ("test", dataset.Test),
        _ => ("all", dataset.All.ToList()),
    };
}
