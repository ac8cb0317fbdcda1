using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Xml.Linq;
using MlNetTransfer.Tests.Fixtures;
using Xunit.Abstractions;

namespace MlNetTransfer.Tests;

/// <summary>
/// The NuGet packages as a team uses them: `dotnet pack` the three libraries into a local folder, check what each package
/// holds, then restore a fresh project (tests/PackageConsumer, copied outside the repository) from that folder alone
/// (for MlNetTransfer*; the registry for the rest), build it and run it: feature extraction, load and predict,
/// a one-epoch fine-tune through the TorchSharp package, and a prediction served by MlNetTransfer.Hosting in a Host.
/// </summary>
public class PackageConsumerTests(ITestOutputHelper output)
{
    private static readonly string[] Libraries = ["MlNetTransfer", "MlNetTransfer.TorchSharp", "MlNetTransfer.Hosting"];

    [SkippableFact]
    public void PackedLibrariesRestoreFromALocalFolderAndTrainAndPredict()
    {
        Skip.If(Environment.GetEnvironmentVariable("MLNETTRANSFER_SKIP_PACKAGE_TEST") == "1", "MLNETTRANSFER_SKIP_PACKAGE_TEST=1");
        using var temp = new TestData.TempFolder();   // under the system temp folder: outside the repository
        var clock = Stopwatch.StartNew();
        var version = $"0.1.0-ci.{DateTime.UtcNow:yyyyMMddHHmmss}.{Guid.NewGuid().ToString("N")[..8]}";
        var feed = Directory.CreateDirectory(temp.File("feed")).FullName;
        var nuspecs = temp.File("nuspec");   // pack's generated .nuspec files go here, not into the repository's obj/
        try
        {
            PackBuildAndRun(temp, version, feed, nuspecs, clock);
        }
        finally
        {
            // The restore extracted this run's unique version into the global packages folder: take it out again.
            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
                ? configured
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            foreach (var library in Libraries)
            {
                var extracted = Path.Combine(packages, library.ToLowerInvariant(), version);
                try { if (Directory.Exists(extracted)) Directory.Delete(extracted, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    private void PackBuildAndRun(TestData.TempFolder temp, string version, string feed, string nuspecs, Stopwatch clock)
    {

        foreach (var library in Libraries)
        {
            var project = Path.Combine(TestData.RepoRoot, "src", library, library + ".csproj");
            // The libraries as the solution built them for these tests (--no-build): packing is what is tested, and a
            // second Release build of the three into a folder of its own cost most of this test's time.
            Dotnet(TestData.RepoRoot, "pack", project, "-c", Processes.Configuration, "--no-build", $"-p:Version={version}", "-o", feed,
                $"-p:NuspecOutputPath={Path.Combine(nuspecs, library)}", "-nologo");
        }
        output.WriteLine($"packed in {clock.Elapsed.TotalSeconds:F0} s");

        foreach (var library in Libraries)
            CheckPackage(feed, library, version);

        var consumer = Directory.CreateDirectory(temp.File("consumer")).FullName;
        var template = Path.Combine(TestData.RepoRoot, "tests", "PackageConsumer");
        File.Copy(Path.Combine(template, "Program.cs"), Path.Combine(consumer, "Program.cs"));
        File.WriteAllText(Path.Combine(consumer, "PackageConsumer.csproj"),
            File.ReadAllText(Path.Combine(template, "PackageConsumer.csproj.template")).Replace("@VERSION@", version));
        File.WriteAllText(Path.Combine(consumer, "nuget.config"), NuGetConfig(feed, RegistrySources()));

        var data = CopySubset(temp.File("data"), classes: 3, train: 8, test: 2);
        var build = Dotnet(consumer, "build", "-c", "Release", "-nologo");
        Assert.DoesNotContain("MLNT0001", build);
        output.WriteLine($"consumer built at {clock.Elapsed.TotalSeconds:F0} s");

        // The packages came from the local folder: the restored MlNetTransfer is the unique version just packed.
        var assets = File.ReadAllText(Path.Combine(consumer, "obj", "project.assets.json"));
        foreach (var library in Libraries)
            Assert.Contains($"\"{library}/{version}\"", assets);

        var bin = Path.Combine(consumer, "bin", "Release", "net10.0");
        Assert.True(File.Exists(Path.Combine(bin, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx")), "the consumer's bin lacks DnnImageModels/ (build assets of the ResNet18 package)");
        var run = Dotnet(consumer, Path.Combine(bin, "PackageConsumer.dll"), data, temp.File("work"));
        output.WriteLine($"consumer ran; total {clock.Elapsed.TotalSeconds:F0} s");

        Assert.Contains("resnet18 model in bin: True", run);
        Assert.Matches(@"trained: \S+ on 24 images", run);
        Assert.Contains("known=True", run.Split('\n').Single(l => l.StartsWith("predicted: ", StringComparison.Ordinal)));
        Assert.Contains("fine-tuned: ", run);
        Assert.Contains("known=True", run.Split('\n').Single(l => l.StartsWith("served: ", StringComparison.Ordinal)));
        Assert.Contains("done", run);
    }

    private void CheckPackage(string feed, string id, string version)
    {
        var nupkg = Path.Combine(feed, $"{id}.{version}.nupkg");
        Assert.True(File.Exists(nupkg), $"{nupkg} missing");
        Assert.True(File.Exists(Path.Combine(feed, $"{id}.{version}.snupkg")), $"{id}: no .snupkg beside the package");
        output.WriteLine($"{id}: {new FileInfo(nupkg).Length / 1024} KiB");
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("README.md", names);
        Assert.Contains($"lib/net10.0/{id}.dll", names);
        Assert.Contains($"lib/net10.0/{id}.xml", names);
        if (id == "MlNetTransfer.TorchSharp")
        {
            Assert.Contains("buildTransitive/MlNetTransfer.TorchSharp.targets", names);
            Assert.Contains("buildTransitive/TorchSharp.targets", names);
        }

        XNamespace ns;
        XElement metadata;
        using (var stream = zip.GetEntry($"{id}.nuspec")!.Open())
        {
            var nuspec = XDocument.Load(stream);
            ns = nuspec.Root!.GetDefaultNamespace();
            metadata = nuspec.Root.Element(ns + "metadata")!;
        }
        Assert.Equal(version, metadata.Element(ns + "version")!.Value);
        var license = metadata.Element(ns + "license")!;
        Assert.Equal("expression", license.Attribute("type")!.Value);
        Assert.Equal("MIT", license.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")!.Value));
        var repository = metadata.Element(ns + "repository")!;
        Assert.Equal("git", repository.Attribute("type")!.Value);
        Assert.StartsWith("https://github.com/", repository.Attribute("url")!.Value);

        var dependencies = metadata.Descendants(ns + "dependency").ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")!.Value);
        Assert.DoesNotContain(dependencies.Keys, k => k.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(dependencies.Keys, k => k.StartsWith("Microsoft.SourceLink", StringComparison.Ordinal) || k == "DotNet.ReproducibleBuilds"
            || k == "Microsoft.CodeAnalysis.PublicApiAnalyzers");
        switch (id)
        {
            case "MlNetTransfer.TorchSharp":
                Assert.Equal($"[{version}]", dependencies["MlNetTransfer"]);
                Assert.Equal("0.107.0", dependencies["TorchSharp"]);
                break;
            case "MlNetTransfer.Hosting":
                Assert.Equal(version, dependencies["MlNetTransfer"]);
                break;
            default:
                // The ResNet18 package's build/ assets (the copy of DnnImageModels/) must reach consumers.
                var resnet = metadata.Descendants(ns + "dependency").Single(d => d.Attribute("id")!.Value == "Microsoft.ML.DnnImageFeaturizer.ResNet18");
                Assert.DoesNotContain("Build", resnet.Attribute("exclude")?.Value ?? "", StringComparison.OrdinalIgnoreCase);
                break;
        }
    }

    /// <summary>The sources this machine restores from (user and machine NuGet configuration), as `dotnet nuget list source` reports them.</summary>
    private List<string> RegistrySources()
    {
        var listed = Dotnet(Path.GetTempPath(), "nuget", "list", "source", "--format", "short");
        var sources = listed.Split('\n').Select(l => l.Trim())
            .Where(l => l.StartsWith("E ", StringComparison.Ordinal)).Select(l => l[2..].Trim()).ToList();
        Assert.NotEmpty(sources);
        return sources;
    }

    private static string NuGetConfig(string feed, List<string> registries)
    {
        var config = new StringBuilder();
        config.AppendLine("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        config.AppendLine("<configuration>");
        config.AppendLine("  <packageSources>");
        config.AppendLine("    <clear />");
        config.AppendLine($"    <add key=\"local\" value=\"{feed}\" />");
        for (var i = 0; i < registries.Count; i++)
            config.AppendLine($"    <add key=\"registry{i}\" value=\"{registries[i]}\" />");
        config.AppendLine("  </packageSources>");
        config.AppendLine("  <packageSourceMapping>");
        config.AppendLine("    <packageSource key=\"local\"><package pattern=\"MlNetTransfer*\" /></packageSource>");
        for (var i = 0; i < registries.Count; i++)
            config.AppendLine($"    <packageSource key=\"registry{i}\"><package pattern=\"*\" /></packageSource>");
        config.AppendLine("  </packageSourceMapping>");
        config.AppendLine("</configuration>");
        return config.ToString();
    }

    /// <summary>A small folder-per-class copy of the Fashion sample (train/ and test/), so the consumer trains in seconds.</summary>
    private static string CopySubset(string target, int classes, int train, int test)
    {
        foreach (var (split, count) in new[] { ("train", train), ("test", test) })
            foreach (var label in Directory.GetDirectories(Path.Combine(TestData.FashionSample, "train")).Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(classes))
            {
                var to = Directory.CreateDirectory(Path.Combine(target, split, label!)).FullName;
                foreach (var file in Directory.GetFiles(Path.Combine(TestData.FashionSample, split, label!)).Order(StringComparer.Ordinal).Take(count))
                    File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
            }
        return target;
    }

    /// <summary>Runs dotnet with <paramref name="args"/> in <paramref name="folder"/>; fails the test, with the output, unless it exits with 0.</summary>
    private string Dotnet(string folder, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = folder };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        // The test host's MSBuild settings must not leak into these builds.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            info.Environment.Remove(name);
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["NO_COLOR"] = "1";
        var result = Processes.Run(info, TimeSpan.FromMinutes(8));
        var text = result.StdOut + result.StdErr;
        Assert.True(result.ExitCode == 0, $"dotnet {string.Join(' ', args)} exited with {result.ExitCode}:\n{text}");
        return text;
    }
}
