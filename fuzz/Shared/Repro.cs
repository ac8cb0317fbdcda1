namespace MlNetTransfer.Fuzz;

/// <summary>
/// <c>--repro FILE|DIR ...</c> of every harness: each input once through the harness's check, printing what happened or
/// the exception and its stack (triage of findings). Linked into each harness project (fuzz/Shared).
/// </summary>
internal static class Repro
{
    public static int Run(string harness, IEnumerable<string> paths, Func<byte[], string> check)
    {
        var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p]).ToList();
        if (files.Count == 0)
        {
            Console.Error.WriteLine($"usage: {harness} --repro FILE|DIR ...");
            return 2;
        }
        int failed = 0;
        foreach (var file in files)
        {
            Console.Out.Flush();
            var started = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var outcome = check(File.ReadAllBytes(file));
                Console.WriteLine($"ok     {file} ({started.ElapsedMilliseconds} ms): {IO.PrintableText.Escape(outcome)}");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"THROWS {file} ({started.ElapsedMilliseconds} ms): {IO.PrintableText.Escape(e.ToString())}");
            }
        }
        Console.WriteLine($"{files.Count - failed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
