// SPDX-License-Identifier: GPL-2.0
/*
 * harness_oops: a tiny out-of-tree module whose only purpose is to make a
 * stock (non-debug) distribution kernel print real crash reports, so the
 * harness's console report parser can be tested on genuine output.
 *
 * Usage (inside a throwaway guest only!):
 *   insmod harness_oops.ko
 *   echo warn > /proc/harness_oops
 *
 * Every trigger lives in its own noinline function so that the function
 * name shows up in RIP/Call Trace lines and in the parser's titles.
 */
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kfence.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/proc_fs.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/uaccess.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Trigger kernel reports for parser tests");

static unsigned int spin_secs = 10;
module_param(spin_secs, uint, 0644);
MODULE_PARM_DESC(spin_secs, "seconds to spin/sleep for lockup, stall and hung cases");

static const int harness_oops_ro = 1;
static struct timer_list harness_oops_timer;

static noinline void harness_oops_warn(void)
{
	WARN_ON(1);
}

/* WARN in a loop: the same report five times, a reader wants it once with a count */
static noinline void harness_oops_warnloop(void)
{
	int i;

	for (i = 0; i < 5; i++) {
		harness_oops_warn();
		msleep(300);
	}
}

static noinline void harness_oops_bug(void)
{
	BUG();
}

static noinline void harness_oops_null(void)
{
	int *volatile p = NULL;

	pr_info("harness_oops: read %d\n", *p);
}

static noinline void harness_oops_gpf(void)
{
	/* A non-canonical address: #GP rather than #PF. */
	unsigned long *volatile p = (unsigned long *)0xdead000000000100UL;

	pr_info("harness_oops: read %lu\n", *p);
}

static noinline void harness_oops_pagefault(void)
{
	/* Module rodata is mapped read-only: a write is a permission fault. */
	int *volatile p = (int *)&harness_oops_ro;

	*p = 2;
}

static noinline void harness_oops_divzero(void)
{
	/* A bare die() line: "Oops: divide error: 0000 [#1]" with no BUG: before it. */
	int volatile zero = 0, num = 1000;

	pr_info("harness_oops: %d\n", num / zero);
}

static noinline void harness_oops_softlockup(void)
{
	unsigned long end = jiffies + spin_secs * HZ;

	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static noinline void harness_oops_hardlockup(void)
{
	unsigned long i;

	local_irq_disable();
	for (i = 0; i < spin_secs * 1000UL; i++)
		mdelay(1);
	local_irq_enable();
}

static noinline void harness_oops_hung(void)
{
	/* msleep() sleeps in TASK_UNINTERRUPTIBLE: the hung task detector sees it. */
	msleep(spin_secs * 1000);
}

static noinline void harness_oops_sched_atomic(void)
{
	preempt_disable();
	msleep(10);
	preempt_enable();
}

static noinline void harness_oops_list(void)
{
	LIST_HEAD(head);
	struct list_head a, b;

	list_add(&a, &head);
	a.prev = (struct list_head *)0x1234; /* corrupt next->prev */
	list_add(&b, &head);
}

static noinline void harness_oops_refcount(void)
{
	refcount_t r = REFCOUNT_INIT(0);

	refcount_inc(&r);
}

static noinline void harness_oops_kfence(void)
{
	char *p = NULL;
	int i;

	for (i = 0; i < 20000; i++) {
		p = kmalloc(32, GFP_KERNEL);
		if (!p || is_kfence_address(p))
			break;
		kfree(p);
		p = NULL;
		usleep_range(500, 1000);
	}
	if (!p) {
		pr_info("harness_oops: no kfence object (boot with kfence.sample_interval=1)\n");
		return;
	}
	/* One page further is always a KFENCE guard page. */
	pr_info("harness_oops: read %d\n", *(volatile char *)(p + PAGE_SIZE));
	kfree(p);
}

static noinline void harness_oops_timer_fn(struct timer_list *t)
{
	harness_oops_null();
}

static noinline void harness_oops_irq(void)
{
	timer_setup(&harness_oops_timer, harness_oops_timer_fn, 0);
	mod_timer(&harness_oops_timer, jiffies + 1);
	msleep(1000);
}

struct harness_oops_case {
	const char *name;
	void (*fn)(void);
};

static const struct harness_oops_case harness_oops_cases[] = {
	{ "warn", harness_oops_warn },
	{ "warnloop", harness_oops_warnloop },
	{ "bug", harness_oops_bug },
	{ "null", harness_oops_null },
	{ "gpf", harness_oops_gpf },
	{ "pagefault", harness_oops_pagefault },
	{ "divzero", harness_oops_divzero },
	{ "softlockup", harness_oops_softlockup },
	{ "hardlockup", harness_oops_hardlockup },
	{ "hung", harness_oops_hung },
	{ "sched_atomic", harness_oops_sched_atomic },
	{ "list", harness_oops_list },
	{ "refcount", harness_oops_refcount },
	{ "kfence", harness_oops_kfence },
	{ "irq", harness_oops_irq },
};

static ssize_t harness_oops_write(struct file *file, const char __user *ubuf,
				  size_t len, loff_t *off)
{
	char buf[32];
	size_t n = min(len, sizeof(buf) - 1);
	int i;

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	buf[n] = '\0';
	strim(buf);
	for (i = 0; i < ARRAY_SIZE(harness_oops_cases); i++) {
		if (!strcmp(buf, harness_oops_cases[i].name)) {
			harness_oops_cases[i].fn();
			return len;
		}
	}
	return -EINVAL;
}

static const struct proc_ops harness_oops_ops = {
	.proc_write = harness_oops_write,
};

static int __init harness_oops_init(void)
{
	if (!proc_create("harness_oops", 0200, NULL, &harness_oops_ops))
		return -ENOMEM;
	return 0;
}

static void __exit harness_oops_exit(void)
{
	remove_proc_entry("harness_oops", NULL);
}

module_init(harness_oops_init);
module_exit(harness_oops_exit);
