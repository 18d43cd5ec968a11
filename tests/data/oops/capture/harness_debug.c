// SPDX-License-Identifier: GPL-2.0
/*
 * harness_debug: the triggers LKDTM lacks, for the debug kernel of
 * kernels-debug.yaml (lockdep, ODEBUG, kmemleak, UBSAN, KASAN,
 * kobject/proc/kvmalloc warnings, a leaked netdev reference).
 *
 *   insmod harness_debug.ko; echo CASE > /proc/harness_debug
 *
 * Names avoid substrings the report parser skips as helpers ("lock",
 * "alloc", "debug_", "proc_", "string"...), so every title names a
 * function of this file: hdbg_<case>.  Each trigger is noinline.
 */
#include <linux/delay.h>
#include <linux/etherdevice.h>
#include <linux/kobject.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/uaccess.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Trigger debug-kernel reports for parser tests");

static DEFINE_MUTEX(hdbg_a);
static DEFINE_MUTEX(hdbg_b);
static DEFINE_SPINLOCK(hdbg_s);
static struct mutex hdbg_pair[2];
static int __rcu *hdbg_rcu_ptr;
static struct timer_list hdbg_timer;
static void *hdbg_keep;
static volatile int hdbg_nine = 9;
static volatile int hdbg_forty = 40;

static noinline void hdbg_ab(void)
{
	mutex_lock(&hdbg_a);
	mutex_lock(&hdbg_b);
	mutex_unlock(&hdbg_b);
	mutex_unlock(&hdbg_a);
}

static noinline void hdbg_ba(void)
{
	mutex_lock(&hdbg_b);
	mutex_lock(&hdbg_a);
	mutex_unlock(&hdbg_a);
	mutex_unlock(&hdbg_b);
}

/* circular: A then B, later B then A (no real deadlock, one thread) */
static noinline void hdbg_circular(void)
{
	hdbg_ab();
	hdbg_ba();
}

/* recursive: two mutexes of one class taken nested without annotation */
static noinline void hdbg_recursive(void)
{
	int i;

	for (i = 0; i < 2; i++)
		mutex_init(&hdbg_pair[i]);
	mutex_lock(&hdbg_pair[0]);
	mutex_lock(&hdbg_pair[1]);
	mutex_unlock(&hdbg_pair[1]);
	mutex_unlock(&hdbg_pair[0]);
}

static noinline void hdbg_unbalance(void)
{
	mutex_unlock(&hdbg_a);
}

static noinline void hdbg_heldfree(void)
{
	struct mutex *m = kmalloc(sizeof(*m), GFP_KERNEL);

	if (!m)
		return;
	mutex_init(m);
	mutex_lock(m);
	kfree(m);
}

/* returns to user space with hdbg_b held */
static noinline void hdbg_userheld(void)
{
	mutex_lock(&hdbg_b);
}

static int hdbg_exitheld_fn(void *unused)
{
	mutex_lock(&hdbg_a);
	return 0;
}

static noinline void hdbg_exitheld(void)
{
	kthread_run(hdbg_exitheld_fn, NULL, "hdbg_exit");
	msleep(2000);
}

static noinline void hdbg_rcu(void)
{
	int *p = rcu_dereference(hdbg_rcu_ptr);

	pr_info("hdbg: rcu pointer %p\n", p);
}

static noinline void hdbg_nonstatic(void)
{
	spinlock_t *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return;
	spin_lock(s);
	spin_unlock(s);
	kfree(s);
}

static void hdbg_timer_fn(struct timer_list *t)
{
	spin_lock(&hdbg_s);
	spin_unlock(&hdbg_s);
}

/* inconsistent: hdbg_s taken with softirqs on, then in a timer (softirq) */
static noinline void hdbg_inconsistent(void)
{
	spin_lock(&hdbg_s);
	spin_unlock(&hdbg_s);
	timer_setup(&hdbg_timer, hdbg_timer_fn, 0);
	mod_timer(&hdbg_timer, jiffies + 1);
	msleep(500);
}

static noinline void hdbg_atomicsleep(void)
{
	spin_lock(&hdbg_s);
	msleep(10);
	spin_unlock(&hdbg_s);
}

struct hdbg_obj {
	struct timer_list timer;
	char pad[32];
};

static void hdbg_never(struct timer_list *t)
{
}

/* ODEBUG: free an object whose timer is armed (an hour away) */
static noinline void hdbg_odebug(void)
{
	struct hdbg_obj *o = kmalloc(sizeof(*o), GFP_KERNEL);

	if (!o)
		return;
	timer_setup(&o->timer, hdbg_never, 0);
	mod_timer(&o->timer, jiffies + 3600 * HZ);
	kfree(o);
}

static noinline void hdbg_kobj(void)
{
	struct kobject *k = kzalloc(sizeof(*k), GFP_KERNEL);

	kobject_get(k);
	hdbg_keep = k;
}

static const struct proc_ops hdbg_ops;

static noinline void hdbg_procdup(void)
{
	proc_create("harness_debug", 0200, NULL, &hdbg_ops);
}

static noinline void hdbg_kvm(void)
{
	hdbg_keep = kvmalloc((size_t)INT_MAX + 4096, GFP_KERNEL);
}

static noinline void hdbg_leak(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (p)
		strcpy(p, "leaked by harness_debug");
	pr_info("hdbg: leaking %p\n", p);
	p = NULL;
}

static noinline void hdbg_shift(void)
{
	pr_info("hdbg: shift %d\n", 1 << hdbg_forty);
}

static noinline void hdbg_bounds(void)
{
	int a[8];
	int i;

	for (i = 0; i < 8; i++)
		a[i] = i;
	pr_info("hdbg: bounds %d\n", a[hdbg_nine]);
}

static noinline void hdbg_uafread(void)
{
	char *p = kmalloc(48, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	pr_info("hdbg: uaf %d\n", READ_ONCE(p[8]));
}

static noinline void hdbg_oobwrite(void)
{
	char *p = kmalloc(40, GFP_KERNEL);
	volatile int i = 40;

	if (!p)
		return;
	p[i] = 1;
	kfree(p);
}

static noinline void hdbg_dfree(void)
{
	char *p = kmalloc(24, GFP_KERNEL);

	kfree(p);
	kfree(p);
}

static struct net_device *hdbg_dev;
static const struct net_device_ops hdbg_netdev_ops;

/* unregister a netdev while a reference is still held: waits forever */
static noinline void hdbg_netdev(void)
{
	hdbg_dev = alloc_netdev(0, "hdbg%d", NET_NAME_UNKNOWN, ether_setup);
	if (!hdbg_dev)
		return;
	hdbg_dev->netdev_ops = &hdbg_netdev_ops;
	if (register_netdev(hdbg_dev))
		return;
	dev_hold(hdbg_dev);
	unregister_netdev(hdbg_dev);
}

/* RCU stall: spin in a read-side section with preemption off */
static noinline void hdbg_stall(void)
{
	int i;

	rcu_read_lock();
	preempt_disable();
	for (i = 0; i < 20000; i++)
		udelay(1000);
	preempt_enable();
	rcu_read_unlock();
}

struct hdbg_case {
	const char *name;
	void (*fn)(void);
};

static const struct hdbg_case hdbg_cases[] = {
	{ "circular", hdbg_circular },
	{ "recursive", hdbg_recursive },
	{ "unbalance", hdbg_unbalance },
	{ "heldfree", hdbg_heldfree },
	{ "userheld", hdbg_userheld },
	{ "exitheld", hdbg_exitheld },
	{ "rcu", hdbg_rcu },
	{ "nonstatic", hdbg_nonstatic },
	{ "inconsistent", hdbg_inconsistent },
	{ "atomicsleep", hdbg_atomicsleep },
	{ "odebug", hdbg_odebug },
	{ "kobj", hdbg_kobj },
	{ "procdup", hdbg_procdup },
	{ "kvm", hdbg_kvm },
	{ "leak", hdbg_leak },
	{ "shift", hdbg_shift },
	{ "bounds", hdbg_bounds },
	{ "uafread", hdbg_uafread },
	{ "oobwrite", hdbg_oobwrite },
	{ "dfree", hdbg_dfree },
	{ "netdev", hdbg_netdev },
	{ "stall", hdbg_stall },
};

static ssize_t hdbg_write(struct file *file, const char __user *ubuf, size_t len, loff_t *off)
{
	char buf[32];
	size_t n = min(len, sizeof(buf) - 1);
	int i;

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	buf[n] = '\0';
	strim(buf);
	for (i = 0; i < ARRAY_SIZE(hdbg_cases); i++) {
		if (!strcmp(buf, hdbg_cases[i].name)) {
			hdbg_cases[i].fn();
			return len;
		}
	}
	return -EINVAL;
}

static const struct proc_ops hdbg_ops = {
	.proc_write = hdbg_write,
};

static int __init hdbg_init(void)
{
	if (!proc_create("harness_debug", 0200, NULL, &hdbg_ops))
		return -ENOMEM;
	return 0;
}

static void __exit hdbg_exit(void)
{
	remove_proc_entry("harness_debug", NULL);
}

module_init(hdbg_init);
module_exit(hdbg_exit);
