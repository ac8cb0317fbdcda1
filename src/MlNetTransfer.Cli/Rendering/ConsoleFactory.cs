using Spectre.Console;
using MlNetTransfer.Cli.Commands;

namespace MlNetTransfer.Cli.Rendering;

/// <summary>The console a command writes to: plain when redirected or asked, so files get no escape codes or bars.</summary>
public static class ConsoleFactory
{
    public static IAnsiConsole Create(GlobalSettings settings)
    {
        bool redirected = Console.IsOutputRedirected;
        bool noColor = settings.NoColor || redirected || Environment.GetEnvironmentVariable("NO_COLOR") is { Length: > 0 };
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = noColor ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = noColor ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        // A log file has no window: give tables room instead of wrapping them at 80 columns.
        if (redirected)
            console.Profile.Width = 140;
        return console;
    }

    /// <summary>Live progress bars only on an interactive terminal; otherwise one line per step.</summary>
    public static bool CanShowLiveProgress(IAnsiConsole console) =>
        console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi && !Console.IsOutputRedirected;
}
