using System.Globalization;

namespace MlNetTransfer.Featurization;

/// <summary>
/// <c>featurize --shard auto</c>: which shard this process is, read from the environment of the batch scheduler that
/// started it. A Slurm job array (<c>sbatch --array=0-3</c> or <c>1-4</c>): <c>SLURM_ARRAY_TASK_ID</c> less
/// <c>SLURM_ARRAY_TASK_MIN</c> of <c>SLURM_ARRAY_TASK_COUNT</c>, for contiguous ids only (no step, no list with gaps: a
/// missing id would be a shard nobody makes). A Kubernetes Indexed Job: <c>JOB_COMPLETION_INDEX</c> (0-based) of the
/// count given with <c>--shard-count</c>, since Kubernetes does not put the Job's completions in the environment. Azure
/// Batch sets no index variable (its task ids are the user's own strings): its tasks pass <c>--shard i/n</c>.
/// The environment comes in as a function so that tests need not set the process's own.
/// </summary>
internal static class SchedulerShard
{
    public const string Auto = "auto";

    public const string SlurmTaskId = "SLURM_ARRAY_TASK_ID", SlurmTaskMin = "SLURM_ARRAY_TASK_MIN", SlurmTaskMax = "SLURM_ARRAY_TASK_MAX",
        SlurmTaskCount = "SLURM_ARRAY_TASK_COUNT", SlurmTaskStep = "SLURM_ARRAY_TASK_STEP", SlurmJobId = "SLURM_JOB_ID",
        KubernetesIndex = "JOB_COMPLETION_INDEX";

    /// <summary>Every variable <see cref="TryResolve"/> reads.</summary>
    public static IReadOnlyList<string> Variables { get; } =
        [SlurmTaskId, SlurmTaskMin, SlurmTaskMax, SlurmTaskCount, SlurmTaskStep, SlurmJobId, KubernetesIndex];

    /// <summary>A resolved shard: 0-based index, count, and where they came from (for the console's line).</summary>
    public sealed record Resolved(int Index, int Count, string Source);

    /// <summary>The process's own environment.</summary>
    public static Func<string, string?> ProcessEnvironment { get; } = Environment.GetEnvironmentVariable;

    /// <summary>
    /// The shard of this task, or null with <paramref name="error"/> saying why (which variables were looked for, or
    /// what is wrong with the ones found). <paramref name="shardCount"/> is <c>--shard-count</c>: required under
    /// Kubernetes, and under Slurm, when given, it must agree with the array.
    /// </summary>
    public static Resolved? TryResolve(Func<string, string?> environment, int? shardCount, out string? error)
    {
        error = null;
        if (shardCount is < 1)
            return Fail(out error, $"--shard-count {shardCount} must be at least 1");
        if (Value(environment, SlurmTaskId) is { } slurmId)
            return Slurm(environment, slurmId, shardCount, out error);
        if (Value(environment, KubernetesIndex) is { } k8sIndex)
            return Kubernetes(k8sIndex, shardCount, out error);
        if (Value(environment, SlurmJobId) is { } job)
            return Fail(out error, $"--shard auto: Slurm job {job} is not a job array ({SlurmTaskId} is not set): submit it with sbatch --array=0-<n-1>, or pass --shard i/n");
        return Fail(out error, $"--shard auto found no scheduler's task index: looked for {SlurmTaskId} (with {SlurmTaskMin}, {SlurmTaskMax}, {SlurmTaskCount}; a Slurm job array) and {KubernetesIndex} (a Kubernetes Indexed Job, with --shard-count); elsewhere (Azure Batch, a shell loop) pass --shard i/n");
    }

    private static Resolved? Slurm(Func<string, string?> environment, string idText, int? shardCount, out string? error)
    {
        error = null;
        if (!TryInt(idText, out int id))
            return Fail(out error, $"--shard auto: {SlurmTaskId}='{idText}' is not a whole number");
        int? min = Int(environment, SlurmTaskMin, ref error), max = Int(environment, SlurmTaskMax, ref error), count = Int(environment, SlurmTaskCount, ref error);
        if (error is not null)
            return null;
        if (min is null || max is null || count is null)
            return Fail(out error, $"--shard auto: {SlurmTaskId} is set but not {string.Join(" and ", new[] { (SlurmTaskMin, min), (SlurmTaskMax, max), (SlurmTaskCount, count) }.Where(v => v.Item2 is null).Select(v => v.Item1))} (Slurm sets all four in a job array)");
        if (Value(environment, SlurmTaskStep) is { } stepText && (!TryInt(stepText, out int step) || step != 1))
            return Fail(out error, $"--shard auto: the Slurm array has a step ({SlurmTaskStep}={stepText}): the shards need contiguous task ids, e.g. --array=0-{count - 1}");
        if (max - min + 1 != count)
            return Fail(out error, $"--shard auto: the Slurm array's task ids are not contiguous ({SlurmTaskMin}={min}, {SlurmTaskMax}={max}, {SlurmTaskCount}={count}): a missing id would be a shard nobody makes; use --array={min}-{min + count - 1} or --shard i/n");
        if (id < min || id > max)
            return Fail(out error, $"--shard auto: {SlurmTaskId}={id} is outside {min}-{max}");
        if (shardCount is { } n && n != count)
            return Fail(out error, $"--shard-count {n} disagrees with the Slurm array's {SlurmTaskCount}={count}: leave --shard-count out under Slurm");
        return new Resolved(id - min.Value, count.Value, $"Slurm array task {id} of {min}-{max}");
    }

    private static Resolved? Kubernetes(string indexText, int? shardCount, out string? error)
    {
        error = null;
        if (!TryInt(indexText, out int index) || index < 0)
            return Fail(out error, $"--shard auto: {KubernetesIndex}='{indexText}' is not a whole number >= 0");
        if (shardCount is not { } count)
            return Fail(out error, $"--shard auto under a Kubernetes Indexed Job ({KubernetesIndex}={index}) needs --shard-count N, the Job's completions: Kubernetes does not put them in the environment");
        if (index >= count)
            return Fail(out error, $"--shard auto: {KubernetesIndex}={index} is not below --shard-count {count} (the Job's completions)");
        return new Resolved(index, count, $"Kubernetes completion index {index}");
    }

    private static string? Value(Func<string, string?> environment, string name) =>
        environment(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

    private static int? Int(Func<string, string?> environment, string name, ref string? error)
    {
        if (Value(environment, name) is not { } text)
            return null;
        if (TryInt(text, out int value))
            return value;
        error ??= $"--shard auto: {name}='{text}' is not a whole number";
        return null;
    }

    private static bool TryInt(string text, out int value) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static Resolved? Fail(out string? error, string message)
    {
        error = message;
        return null;
    }
}
