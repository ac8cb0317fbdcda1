// AtomicSaveChild <source.zip> <target.zip>: saves the source model to the target again and again, printing "saved N"
// after each save, until killed. The tests kill it at random moments and check the target is always a whole model.
using Microsoft.ML;
using MlNetTransfer.Inference;

var ml = new MLContext(1);
using var package = ModelArchive.Open(args[0], ml);
var metadata = package.RequireMetadata("it cannot be saved again");
for (int n = 1; ; n++)
{
    ModelArchive.Save(ml, package.Model, package.InputSchema, metadata with { CreatedUtc = DateTimeOffset.UtcNow }, args[1]);
    Console.WriteLine($"saved {n}");
}
