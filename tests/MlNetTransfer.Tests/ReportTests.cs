using System.Diagnostics;
using System.Text.RegularExpressions;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>train writes a self-contained HTML report, and it renders with all its images in headless Chromium.</summary>
public class ReportTests
{
    private const string Chromium = "/usr/bin/chromium";

    [SkippableFact]
    public void FineTuningReportRendersInChromiumWithItsImages()
    {
        Skip.IfNot(File.Exists(Chromium), $"{Chromium} is not installed (Debian package chromium; .ci/run installs it)");
        using var temp = new TestData.TempFolder();
        // Fine-tuning (short: 2 + 2 epochs, 1 augmented view) on real photos where the shared ones are: a manifest of 30
        // hymenoptera training photos a class (the GIF placeholder among them, to be skipped and listed) and 15 validation
        // ones, since rendering is what is tested here, not accuracy; the repo's sample otherwise.
        string data, split;
        if (Directory.Exists(TestData.Hymenoptera))
        {
            IEnumerable<string> Rows(string folder, string cls, string splitName, int count)
            {
                var files = Directory.GetFiles(Path.Combine(TestData.Hymenoptera, folder, cls)).Order(StringComparer.Ordinal).ToList();
                bool placeholder(string f) => f.EndsWith("imageNotFound.gif", StringComparison.Ordinal);
                return files.Where(placeholder).Concat(files.Where(f => !placeholder(f)).Take(count))
                    .Select(f => $"\"{f.Replace("\"", "\"\"")}\",{cls},{splitName}");
            }
            File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
                .. new[] { "ants", "bees" }.SelectMany(c => Rows("train", c, "train", 30).Concat(Rows("val", c, "validation", 15)))]);
            (data, split) = (temp.File("data.csv"), "validation");
        }
        else
        {
            var subset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
            File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
                .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
            (data, split) = (temp.File("data.csv"), "test");
        }
        var train = Processes.Run(Processes.CliDll, "train", data, "--out", temp.File("m.zip"), "--mode", "fine-tune", "--unfreeze", "stage4",
            "--epochs", "2", "--head-epochs", "2", "--augment", "1", "--threads", "2");
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);

        var report = Path.Combine(temp.Path, "report", "report.html");
        Assert.True(File.Exists(report), train.StdOut);
        foreach (var png in new[] { "loss.png", "accuracy.png", $"confusion-{split}.png" })
            Assert.True(new FileInfo(Path.Combine(temp.Path, "report", png)).Length > 1000, png);
        Assert.True(File.Exists(temp.File("m.consumption.cs")));
        var html = File.ReadAllText(report);
        var sources = Regex.Matches(html, "<img[^>]* src=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.All(sources, s => Assert.StartsWith("data:image/png;base64,", s)); // nothing fetched
        Assert.Contains("Top losses", html);
        Assert.Contains("Most confused", html);
        Assert.Contains("Training options", html);

        var dom = RunChromium(temp.Path, "--virtual-time-budget=5000", "--dump-dom", new Uri(report).AbsoluteUri);
        var body = Regex.Match(dom, "<body[^>]*data-images-total=\"(\\d+)\"[^>]*data-images-loaded=\"(\\d+)\"");
        Assert.True(body.Success, "the report's load script did not run: " + dom[..Math.Min(300, dom.Length)]);
        int total = int.Parse(body.Groups[1].Value), loaded = int.Parse(body.Groups[2].Value);
        Assert.Equal(sources.Count, total);
        Assert.Equal(total, loaded);
        Assert.True(total >= 3 + 9, $"expected the plots and the gallery, found {total} images");
        if (split == "validation")
            Assert.Contains("imageNotFound.gif", html); // the skipped placeholder is listed

        var screenshot = Path.Combine(temp.Path, "shot.png");
        RunChromium(temp.Path, "--window-size=1280,2400", $"--screenshot={screenshot}", new Uri(report).AbsoluteUri);
        Assert.True(new FileInfo(screenshot).Length > 10_000);
    }

    private static string RunChromium(string workDir, params string[] args)
    {
        var info = new ProcessStartInfo(Chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workDir };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", $"--user-data-dir={Path.Combine(workDir, "chromium-" + Guid.NewGuid().ToString("N")[..8])}" }.Concat(args))
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish in 60 s");
        }
        return stdout.Result;
    }
}
