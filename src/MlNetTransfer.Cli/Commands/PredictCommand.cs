using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class PredictSettings : ImageSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<images>")]
    [Description("An image, a folder (searched recursively), or a CSV/TSV manifest whose first column is the image path.")]
    public string Images { get; init; } = "";

    [CommandOption("-k|--top <K>")]
    [Description("How many labels to show per image, best first.")]
    [DefaultValue(3)]
    public int Top { get; init; } = 3;

    [CommandOption("--json")]
    [Description("Write JSON to standard output (one object per image), for scripts.")]
    public bool Json { get; init; }

    [CommandOption("--csv")]
    [Description("Write CSV to standard output: path,label,probability,top-k labels and scores.")]
    public bool Csv { get; init; }

    [CommandOption("--unknown-threshold <X>")]
    [Description("Answer \"unknown\" for images whose novelty score is above this (default: the threshold stored in the model, set at its training false-alarm rate; see info).")]
    public double? UnknownThreshold { get; init; }

    public override ValidationResult Validate() =>
        Top < 1 ? ValidationResult.Error("--top must be at least 1")
        : UnknownThreshold is { } t && !(double.IsFinite(t) && t >= 0) ? ValidationResult.Error("--unknown-threshold must be a number >= 0")
        : Json && Csv ? ValidationResult.Error("choose one of --json and --csv")
        : base.Validate();
}

/// <summary><c>predict</c>: label + top-k scores for images, through the saved ML.NET model only.</summary>
public sealed class PredictCommand : Command<PredictSettings>
{
    public override int Execute(CommandContext context, PredictSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var (images, skipped) = ImageInputs.Expand(settings.Images, settings.DataOptions);
        if (images.Count == 0 && skipped.Count == 0)
            throw new DatasetException($"{Path.GetFullPath(settings.Images)}: no images found (supported: {string.Join(", ", ImageFileCheck.Extensions)}).");
        using var classifier = ImageClassifier.Load(settings.Model, validation: settings.Validation);
        if (settings.UnknownThreshold is { } threshold)
        {
            if (classifier.UnknownThreshold is null)
                throw new ModelLoadException($"'{classifier.ModelPath}' has no novelty score (trained without it, or by an older version): --unknown-threshold cannot apply.");
            classifier.UnknownThreshold = threshold;
        }
        var results = new List<(string Path, ImagePrediction? Prediction, string? Error)>();
        foreach (var s in skipped)
            results.Add((s.Path, null, s.Reason));
        foreach (var image in images)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                results.Add((image, classifier.Predict(image), null));
            }
            catch (ImageReadException e)
            {
                results.Add((image, null, e.Reason));
            }
        }
        results = results.OrderBy(r => r.Path, StringComparer.Ordinal).ToList();

        if (settings.Json)
            Console.Out.WriteLine(JsonSerializer.Serialize(results.Select(r => new
            {
                path = r.Path,
                answer = r.Prediction is null ? null : r.Prediction.IsUnknown ? UnknownAnswer : r.Prediction.Label,
                label = r.Prediction?.Label,
                probability = r.Prediction?.Probability,
                novelty = r.Prediction?.Novelty,
                unknown = r.Prediction?.Novelty is null ? (bool?)null : r.Prediction.IsUnknown,
                top = r.Prediction?.Top(settings.Top).Select(s => new { label = s.Label, score = s.Score }),
                error = r.Error,
            }), new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
        else if (settings.Csv)
            WriteCsv(results, settings.Top, classifier.UnknownThreshold is not null);
        else
            WriteTable(console, results, settings.Top, classifier.UnknownThreshold);

        // A single unreadable image is an error; in a batch, bad files are listed and the rest is predicted.
        return results.All(r => r.Error is not null) ? Fail(console, results) : 0;
    }

    private static int Fail(IAnsiConsole console, List<(string Path, ImagePrediction? Prediction, string? Error)> results)
    {
        throw new ImageReadException(results[0].Path, results[0].Error!);
    }

    /// <summary>What predict answers for an image the novelty score calls unknown.</summary>
    public const string UnknownAnswer = "unknown";

    private static void WriteTable(IAnsiConsole console, List<(string Path, ImagePrediction? Prediction, string? Error)> results, int top, double? threshold)
    {
        bool novelty = threshold is not null;
        var table = new Table().AddColumn("image").AddColumn("label").AddColumn(new TableColumn("probability").RightAligned());
        if (novelty)
            table.AddColumn(new TableColumn("novelty").RightAligned());
        table.AddColumn($"top {top}");
        foreach (var (path, prediction, error) in results)
        {
            var cells = new List<string> { SafeMarkup.Escape(path) };
            if (prediction is null)
                cells.AddRange(["[red]skipped[/]", "", SafeMarkup.Escape(error ?? "")]);
            else
            {
                cells.Add(prediction.IsUnknown
                    ? $"[yellow]{UnknownAnswer}[/] (closest: {SafeMarkup.Escape(prediction.Label)})"
                    : $"[bold]{SafeMarkup.Escape(prediction.Label)}[/]");
                cells.Add(prediction.Probability.ToString("F4", CultureInfo.InvariantCulture));
                if (novelty)
                    cells.Add(prediction.Novelty?.ToString("F3", CultureInfo.InvariantCulture) ?? "");
                cells.Add(SafeMarkup.Escape(string.Join("  ", prediction.Top(top).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Label} {s.Score:F4}")))));
            }
            if (prediction is null && novelty)
                cells.Insert(3, "");
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
        if (novelty)
            console.MarkupLine(SafeMarkup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"Novelty above {threshold:F3} is answered \"{UnknownAnswer}\" (the image is likely of none of the model's classes); --unknown-threshold changes it.")));
    }

    private static void WriteCsv(List<(string Path, ImagePrediction? Prediction, string? Error)> results, int top, bool novelty)
    {
        static string Q(string raw) { var s = MlNetTransfer.IO.PrintableText.Escape(raw); return s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s; }
        var header = new StringBuilder("path,label,probability");
        for (int i = 1; i <= top; i++) header.Append(CultureInfo.InvariantCulture, $",top{i}_label,top{i}_score");
        if (novelty)
            header.Append(",novelty,unknown");
        header.Append(",error");
        Console.Out.WriteLine(header);
        foreach (var (path, prediction, error) in results)
        {
            var line = new StringBuilder(Q(path));
            if (prediction is null)
                line.Append(",,").Append(string.Concat(Enumerable.Repeat(",,", top))).Append(novelty ? ",," : "").Append(',').Append(Q(error ?? ""));
            else
            {
                line.Append(',').Append(Q(prediction.Label)).Append(',').Append(prediction.Probability.ToString("R", CultureInfo.InvariantCulture));
                var best = prediction.Top(top);
                for (int i = 0; i < top; i++)
                    line.Append(',').Append(i < best.Count ? Q(best[i].Label) : "").Append(',').Append(i < best.Count ? best[i].Score.ToString("R", CultureInfo.InvariantCulture) : "");
                if (novelty)
                    line.Append(',').Append(prediction.Novelty?.ToString("R", CultureInfo.InvariantCulture) ?? "").Append(',').Append(prediction.IsUnknown ? "true" : "false");
                line.Append(',');
            }
            Console.Out.WriteLine(line);
        }
    }
}
