using System.ComponentModel;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

/// <summary>Options every command takes.</summary>
public class GlobalSettings : CommandSettings
{
    [CommandOption("-q|--quiet")]
    [Description("Print only results and errors: no progress, no tables of the data.")]
    public bool Quiet { get; init; }

    [CommandOption("-v|--verbose")]
    [Description("Print more detail, and the stack trace of an error.")]
    public bool Verbose { get; init; }

    [CommandOption("--no-color")]
    [Description("No colours or styles (also when NO_COLOR is set or output is redirected).")]
    public bool NoColor { get; init; }
}
