// A one-datanode HDFS (Hadoop's MiniDFSCluster) for the sluice-flume hdfs sink tests.
//
//   java -cp "<hadoop libs>/*:<classes>" MiniDfs <base dir>
//
// Prints "namenode port N" once the cluster is up, then runs until its standard input is
// closed (the test process exiting closes it, so no cluster outlives its test).
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

public class MiniDfs {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: MiniDfs <base dir>");
            System.exit(2);
        }
        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, args[0]);
        conf.setBoolean("dfs.permissions.enabled", false);
        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
            .numDataNodes(1)
            .nameNodePort(0)
            .build();
        cluster.waitActive();
        System.out.println("namenode port " + cluster.getNameNodePort());
        System.out.flush();
        while (System.in.read() != -1) {
            // Keep running until stdin closes.
        }
        cluster.shutdown();
    }
}
