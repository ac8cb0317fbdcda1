using System.Collections.Concurrent;
using System.Globalization;
using MlNetTransfer.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace MlNetTransfer.Cli.Rendering;

/// <summary>
/// Renders the library's progress events: live bars with rate and ETA on a terminal, one line per step when the
/// output is redirected (so a log file gets no bar garbage), nothing but warnings when quiet.
/// </summary>
public sealed class ConsoleProgress(IAnsiConsole console, bool quiet) : IProgress<ProgressEvent>
{
    private readonly ConcurrentDictionary<string, ProgressTask> _tasks = new();
    private ProgressContext? _context;
    private string? _epochHeaderFor;

    /// <summary>Runs <paramref name="work"/> with live bars where the console allows it.</summary>
    public T Run<T>(Func<T> work)
    {
        if (quiet || !ConsoleFactory.CanShowLiveProgress(console))
            return work();
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RateColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                _context = context;
                try
                {
                    return work();
                }
                finally
                {
                    _context = null;
                }
            });
    }

    public void Report(ProgressEvent value)
    {
        switch (value)
        {
            case ProgressNote note:
                var text = Commands.OptionFlags.Translate(note.Text);
                if (note.IsWarning || !quiet)
                    console.MarkupLine(note.IsWarning ? $"[yellow]warning:[/] {SafeMarkup.Escape(text)}" : $"[grey]{SafeMarkup.Escape(text)}[/]");
                break;
            case FeaturesCached cached when !quiet:
                if (cached.Damaged > 0)
                    console.MarkupLine($"[yellow]warning:[/] {SafeMarkup.Escape(cached.Stage)}: {cached.Damaged} damaged cache entries (checksum) were computed again");
                var speed = cached.ViewsComputed > 0 && cached.Elapsed.TotalSeconds > 0
                    ? string.Create(CultureInfo.InvariantCulture, $" in {cached.Elapsed.TotalSeconds:F1} s ({cached.ViewsComputed / cached.Elapsed.TotalSeconds:F1} views/s)")
                    : "";
                console.MarkupLine($"[grey]  {SafeMarkup.Escape(cached.Stage)}: {cached.FromCache} from the cache, {cached.Computed} through the conv base ({cached.ViewsComputed} views){speed}[/]");
                break;
            case EpochFinished epoch when !quiet:
                if (_epochHeaderFor != epoch.Phase)
                {
                    _epochHeaderFor = epoch.Phase;
                    console.MarkupLine($"[bold]{"phase",-10} {"epoch",7} {"train loss",11} {"train acc",9} {"val loss",10} {"val acc",8} {"lr",9} {"time",7}[/]");
                }
                // A refit on all the data has no validation split: its columns show "-".
                string Val(double v, int width) => double.IsNaN(v) ? "-".PadLeft(width) : v.ToString("F4", CultureInfo.InvariantCulture).PadLeft(width);
                console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"{SafeMarkup.Escape(epoch.Phase),-10} {$"{epoch.Epoch}/{epoch.Epochs}",7} {epoch.TrainLoss,11:F4} {epoch.TrainAccuracy,9:F4} {Val(epoch.ValidationLoss, 10)} {Val(epoch.ValidationAccuracy, 8)} {epoch.LearningRate,9:0.0e+00} {epoch.Elapsed.TotalSeconds,6:F1}s{(epoch.IsBest ? " [green]best[/]" : "")}"));
                break;
            case StageStarted started when !quiet:
                if (_context is { } context)
                {
                    var task = context.AddTask(SafeMarkup.Escape(started.Description), maxValue: Math.Max(1, started.Total));
                    if (started.Total == 0) task.IsIndeterminate = true;
                    _tasks[started.Stage] = task;
                }
                else
                {
                    console.MarkupLine($"{SafeMarkup.Escape(started.Description)}...");
                }
                break;
            case StageAdvanced advanced when !quiet:
                if (_tasks.TryGetValue(advanced.Stage, out var running))
                    running.Value = advanced.Done;
                break;
            case StageFinished finished when !quiet:
                if (_tasks.TryRemove(finished.Stage, out var done))
                {
                    done.IsIndeterminate = false;
                    done.Value = done.MaxValue;
                    done.StopTask();
                }
                else
                {
                    var rate = finished.Done > 0 && finished.Elapsed.TotalSeconds > 0
                        ? string.Create(CultureInfo.InvariantCulture, $", {finished.Done / finished.Elapsed.TotalSeconds:F1}/s")
                        : "";
                    console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {SafeMarkup.Escape(finished.Stage)}: done{(finished.Done > 0 ? $", {finished.Done} items" : "")} in {finished.Elapsed.TotalSeconds:F1} s{rate}"));
                }
                break;
        }
    }

    /// <summary>Items per second of a task (images, folds, epochs).</summary>
    private sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } speed and > 0 ? speed.ToString("F1", CultureInfo.InvariantCulture) + "/s" : "", new Style(Color.Grey));
    }
}
