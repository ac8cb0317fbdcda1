using System.Diagnostics;
using MlNetTransfer.Featurization;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary><c>featurize --shard auto</c>: the shard from a Slurm job array's or a Kubernetes Indexed Job's environment.</summary>
public class SchedulerShardTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => (string?)v.Value);
        return name => map.GetValueOrDefault(name);
    }

    private static Func<string, string?> SlurmArray(int id, int min, int max, int count, int? step = 1) =>
        Env([("SLURM_JOB_ID", "1234"), ("SLURM_ARRAY_JOB_ID", "1234"), ("SLURM_ARRAY_TASK_ID", $"{id}"), ("SLURM_ARRAY_TASK_MIN", $"{min}"),
            ("SLURM_ARRAY_TASK_MAX", $"{max}"), ("SLURM_ARRAY_TASK_COUNT", $"{count}"), .. step is { } s ? new[] { ("SLURM_ARRAY_TASK_STEP", $"{s}") } : []]);

    private static SchedulerShard.Resolved Resolve(Func<string, string?> environment, int? shardCount = null)
    {
        var shard = SchedulerShard.TryResolve(environment, shardCount, out var error);
        Assert.True(shard is not null, error);
        Assert.Null(error);
        return shard!;
    }

    private static string Refused(Func<string, string?> environment, int? shardCount = null)
    {
        Assert.Null(SchedulerShard.TryResolve(environment, shardCount, out var error));
        Assert.NotNull(error);
        return error!;
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(3, 3)]
    public void AZeroBasedSlurmArrayIsItsOwnIndex(int id, int expected)
    {
        var shard = Resolve(SlurmArray(id, 0, 3, 4));
        Assert.Equal((expected, 4), (shard.Index, shard.Count));
        Assert.Contains("Slurm array task", shard.Source);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(4, 3)]
    public void AOneBasedSlurmArrayCountsFromItsFirstId(int id, int expected)
    {
        var shard = Resolve(SlurmArray(id, 1, 4, 4));
        Assert.Equal((expected, 4), (shard.Index, shard.Count));
        // Any offset: --array=10-13.
        Assert.Equal(2, Resolve(SlurmArray(12, 10, 13, 4)).Index);
    }

    [Fact]
    public void ASlurmArrayWithoutAStepVariableIsContiguousEnough()
    {
        var shard = Resolve(SlurmArray(2, 0, 3, 4, step: null));
        Assert.Equal((2, 4), (shard.Index, shard.Count));
    }

    [Fact]
    public void ASlurmArrayWithGapsOrAStepIsRefused()
    {
        // --array=0,1,5: three tasks over ids 0..5.
        var gaps = Refused(SlurmArray(5, 0, 5, 3));
        Assert.Contains("not contiguous", gaps);
        Assert.Contains("SLURM_ARRAY_TASK_MAX=5", gaps);
        // --array=0-6:2: ids 0, 2, 4, 6.
        Assert.Contains("step", Refused(SlurmArray(2, 0, 6, 4, step: 2)));
        // A step of 1 spelt out is fine; a count that disagrees with the array is not.
        Assert.Contains("disagrees", Refused(SlurmArray(1, 0, 3, 4), shardCount: 3));
        Assert.Equal(4, Resolve(SlurmArray(1, 0, 3, 4), shardCount: 4).Count);
    }

    [Fact]
    public void ABrokenSlurmEnvironmentIsRefusedByName()
    {
        Assert.Contains("SLURM_ARRAY_TASK_COUNT", Refused(Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "3"))));
        Assert.Contains("'x'", Refused(Env(("SLURM_ARRAY_TASK_ID", "x"))));
        Assert.Contains("SLURM_ARRAY_TASK_MIN='-1'", Refused(SlurmArray(0, -1, 2, 4)));
        // A Slurm job that is not an array.
        var single = Refused(Env(("SLURM_JOB_ID", "77")));
        Assert.Contains("not a job array", single);
        Assert.Contains("--array", single);
    }

    [Fact]
    public void AKubernetesIndexedJobTakesItsCountFromShardCount()
    {
        var shard = Resolve(Env(("JOB_COMPLETION_INDEX", "2")), shardCount: 4);
        Assert.Equal((2, 4), (shard.Index, shard.Count));
        Assert.Contains("Kubernetes", shard.Source);
        Assert.Equal(0, Resolve(Env(("JOB_COMPLETION_INDEX", "0")), shardCount: 1).Index);
    }

    [Fact]
    public void AKubernetesIndexedJobWithoutShardCountOrOutsideItIsRefused()
    {
        var missing = Refused(Env(("JOB_COMPLETION_INDEX", "2")));
        Assert.Contains("--shard-count", missing);
        Assert.Contains("completions", missing);
        Assert.Contains("not below --shard-count 4", Refused(Env(("JOB_COMPLETION_INDEX", "4")), shardCount: 4));
        Assert.Contains("JOB_COMPLETION_INDEX='-1'", Refused(Env(("JOB_COMPLETION_INDEX", "-1")), shardCount: 4));
        Assert.Contains("at least 1", Refused(Env(("JOB_COMPLETION_INDEX", "0")), shardCount: 0));
    }

    [Fact]
    public void NoSchedulerNamesTheVariablesLookedFor()
    {
        foreach (var error in new[] { Refused(Env()), Refused(Env(("SLURM_ARRAY_TASK_ID", "  "))) })
        {
            Assert.Contains("SLURM_ARRAY_TASK_ID", error);
            Assert.Contains("JOB_COMPLETION_INDEX", error);
            Assert.Contains("--shard i/n", error);
        }
    }

    [Fact]
    public void SlurmWinsWhenBothAreSet()
    {
        // Slurm's variables are looked for first, and no --shard-count is needed then.
        var both = Resolve(Env(("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")));
        Assert.Equal((3, 4), (both.Index, both.Count));
    }

    /// <summary>The console with the scheduler variables of the test's own environment blanked, then <paramref name="set"/>, in <paramref name="folder"/>.</summary>
    private static Processes.Result Cli(string folder, IEnumerable<(string Name, string Value)> set, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = folder };
        foreach (var name in SchedulerShard.Variables)
            info.Environment[name] = "";
        foreach (var (name, value) in set)
            info.Environment[name] = value;
        info.Environment["MLNETTRANSFER_CACHE"] = Path.Combine(folder, "cache");
        info.Environment["NO_COLOR"] = "1";
        info.ArgumentList.Add(Processes.CliDll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        return Processes.Run(info, TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void TheConsoleWritesTheResolvedShardUnderItsDefaultName()
    {
        using var temp = new TestData.TempFolder();
        var data = temp.File("data");
        foreach (var image in TestData.FashionSubset(classes: 2, train: 2, test: 0).Train)
        {
            var target = Path.Combine(data, image.Label, Path.GetFileName(image.Path));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(image.Path, target);
        }
        var work = Directory.CreateDirectory(temp.File("work")).FullName;

        // Nothing set: a usage error before any work, naming what it looked for.
        var none = Cli(work, [], "featurize", data, "--shard", "auto");
        Assert.True(none.ExitCode == 2, $"exit {none.ExitCode}: {none.StdOut}{none.StdErr}");
        Assert.Contains("SLURM_ARRAY_TASK_ID", none.StdErr);
        Assert.Contains("JOB_COMPLETION_INDEX", none.StdErr);
        Assert.False(Directory.Exists(Path.Combine(work, "cache")));
        Assert.Contains("--shard-count goes with --shard auto", Cli(work, [], "featurize", data, "--shard", "1/2", "--shard-count", "2").StdErr);

        // Task 2 of a 1-based array of 2 (sbatch --array=1-2) is shard 2/2.
        var made = Cli(work, [("SLURM_JOB_ID", "8"), ("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "2"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("SLURM_ARRAY_TASK_STEP", "1")],
            "featurize", data, "--shard", "auto", "--threads", "1");
        Assert.True(made.ExitCode == 0, made.StdOut + made.StdErr);
        Assert.Contains("shard 2/2 (--shard auto: Slurm array task 2 of 1-2)", made.StdOut);
        var shard = FeatureShard.Load(Path.Combine(work, "features-2-of-2.shard"));
        Assert.Equal((1, 2, 2), (shard.Index, shard.Count, shard.Records.Count));
    }
}
