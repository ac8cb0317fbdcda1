using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// File and class names that carry terminal escape sequences or newlines: printed visibly escaped, on one line, and
/// written into the generated consumption code only as escaped string literals.
/// </summary>
public sealed class NameInjectionTests
{
    private const string Escape = "\u001b";
    private const string Newline = "x\n#error injected";
    private const string Colour = "red\u001b[31mtext";

    private static void SkipWhereNamesCannotHoldControls() =>
        Skip.If(OperatingSystem.IsWindows(), "Windows file names cannot hold control characters");

    private static string Folder(TestData.TempFolder temp)
    {
        var root = temp.File("data");
        var source = Path.Combine(TestData.FashionSample, "train");
        foreach (var (label, from) in new[] { (Newline, "bag"), (Colour, "coat"), ("plain", "dress") })
        {
            var dir = Directory.CreateDirectory(Path.Combine(root, label)).FullName;
            foreach (var (file, i) in Directory.GetFiles(Path.Combine(source, from)).Order(StringComparer.Ordinal).Take(6).Select((f, i) => (f, i)))
                File.Copy(file, Path.Combine(dir, i == 0 ? $"title\u001b]0;pwned\u0007{i}.png" : $"{i}.png"));
        }
        // Not an image, with a newline in its name: it is listed as skipped, on one line.
        File.WriteAllText(Path.Combine(root, "plain", "notes\nfake line.txt"), "text");
        return root;
    }

    [SkippableFact]
    public void ControlCharactersInNamesNeverReachTheTerminalOrTheGeneratedCodeRaw()
    {
        SkipWhereNamesCannotHoldControls();
        using var temp = new TestData.TempFolder();
        var data = Folder(temp);
        var zip = temp.File("m.zip");
        var train = Processes.Run(Processes.CliDll, "train", data, "--mode", "feature-extraction", "--out", zip);
        Assert.True(train.ExitCode == 0, train.StdErr);
        var predict = Processes.Run(Processes.CliDll, "predict", zip, Path.Combine(data, Colour));
        Assert.Equal(0, predict.ExitCode);
        foreach (var output in new[] { train.StdOut, train.StdErr, predict.StdOut, predict.StdErr })
        {
            Assert.DoesNotContain(Escape, output, StringComparison.Ordinal);
            Assert.DoesNotContain("\u0007", output, StringComparison.Ordinal);
            // (Ordinal: a culture-aware search ignores control characters and finds them anywhere.)
            // The newline in a class or file name is printed as \n: no printed line starts with what followed it.
            Assert.DoesNotContain(output.Split('\n'), line => line.TrimStart(' ', '│', '|').StartsWith("#error injected", StringComparison.Ordinal) || line.TrimStart().StartsWith("fake line.txt", StringComparison.Ordinal));
        }
        Assert.Contains("\\u001b[31m", train.StdOut + predict.StdOut);

        var code = File.ReadAllText(Path.ChangeExtension(zip, ".consumption.cs"));
        Assert.DoesNotContain(code.Split('\n'), line => line.TrimStart().StartsWith("#error", StringComparison.Ordinal));
        Assert.DoesNotContain(Escape, code, StringComparison.Ordinal);
        Assert.Contains("\"x\\u000a#error injected\"", code);
        Assert.Contains("\"red\\u001b[31mtext\"", code);
    }

    [SkippableFact]
    public void AnErrorNamingAFileWithANewlineIsStillOneLine()
    {
        SkipWhereNamesCannotHoldControls();
        using var temp = new TestData.TempFolder();
        var missing = temp.File("no\nsuch\u001b[2Jfolder");
        var run = Processes.Run(Processes.CliDll, "validate", missing);
        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error:", line);
        Assert.Contains("no\\nsuch\\u001b[2Jfolder", line);
    }
}
